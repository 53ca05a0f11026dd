"""Issuing and revoking API tokens: the only two ways a token changes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken
from lims.audit import require_reason, save_audited
from lims.errors import DomainError
from lims.roles import ROLES, has_role

TOKEN_PREFIX = "stroma_"  # noqa: S105 - a marker that makes a leaked token easy to find, not a secret


def hash_token(raw: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to guess."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown once; only its hash is stored


def _may_manage(acting_user: Any, owner: Any) -> bool:
    if getattr(acting_user, "pk", None) == owner.pk:
        return True
    return bool(getattr(acting_user, "is_superuser", False)) or (
        getattr(acting_user, "username", None) == settings.STROMA_SYSTEM_USERNAME
    )


def api_token_issue(*, owner: Any, role: str, name: str, acting_user: Any) -> IssuedToken:
    """Issue a token limited to one role the owner holds; the raw token is returned once."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Name the device or integration that will hold the token.")
    if role not in ROLES:
        raise DomainError(f"Choose the token's role from: {', '.join(ROLES)}.")
    if not _may_manage(acting_user, owner):
        raise DomainError("You can issue API tokens only for yourself.", code="forbidden")
    if owner.is_superuser:
        raise DomainError("A superuser account cannot have API tokens: use a personal account with a role.")
    if not owner.is_active or not has_role(owner, role):
        raise DomainError(
            f"{owner.printed_name} does not hold the role “{role}”; a token can only narrow what its owner may do.",
            code="forbidden",
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name, owner=owner, role=role, prefix=raw[:12], key_hash=hash_token(raw), created_by=acting_user
    )
    save_audited(token, acting_user=acting_user, reason=f"API token issued: {name} ({role})")
    return IssuedToken(token=token, raw=raw)


def api_token_revoke(*, token: ApiToken, acting_user: Any, reason: str) -> ApiToken:
    """Revoke a token for good; the row and its history stay."""
    reason = require_reason(reason, what="revoking a token")
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().select_related("owner").get(pk=token.pk)
        if not _may_manage(acting_user, locked.owner):
            raise DomainError("You can revoke only your own API tokens.", code="forbidden")
        if locked.revoked_at is not None:
            when = timezone.localtime(locked.revoked_at)
            raise DomainError(
                f"Token {locked.prefix}… was already revoked on {when:%Y-%m-%d %H:%M}.", code="bad_transition"
            )
        locked.revoked_at, locked.revoked_by, locked.revoke_reason = timezone.now(), acting_user, reason
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"API token revoked: {reason}",
            update_fields=["revoked_at", "revoked_by", "revoke_reason"],
        )
    return locked


def token_for(raw: str) -> ApiToken | None:
    return ApiToken.objects.select_related("owner").filter(key_hash=hash_token(raw)).first()
