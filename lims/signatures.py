"""Electronic signatures (21 CFR 11.50, 11.70, 11.200).

A signature always re-asks username and password, even inside a logged-in session. It binds
the signer, the printed name, the UTC time and the meaning to a SHA-256 over the record's
canonical content, so that neither the record nor the manifestation can change unnoticed.
Refused attempts are written in their own transaction before the refusal is raised, so the
evidence survives even when the step that asked for the signature is rolled back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.errors import DomainError
from lims.models import Signature, SignatureFailure, SignatureMeaning


@dataclass(frozen=True)
class SignatureRequest:
    """What the signer typed on the confirmation page."""

    username: str
    password: str
    meaning: str
    reason: str


def _canonical_value(value: object) -> object:
    if isinstance(value, datetime):
        # Epoch microseconds in UTC: the same instant always hashes the same, whatever the zone.
        return int(value.astimezone(UTC).timestamp() * 1_000_000)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, models.Model):
        return f"{value._meta.label_lower}:{value.pk}"
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record_content(record: models.Model) -> dict[str, object]:
    """What a signature covers: the record's own statement of its content, or all its fields."""
    if hasattr(record, "signature_content"):
        content = record.signature_content()
    else:
        content = {f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields}
    return {"model": record._meta.label_lower, "pk": record.pk, "content": content}


def canonical_hash(payload: object) -> str:
    text = json.dumps(_canonical_value(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def manifestation_hash(
    *, record_hash: str, signer_id: int, printed_name: str, meaning: str, signed_at: datetime
) -> str:
    return canonical_hash(
        {
            "record_hash": record_hash,
            "signer": signer_id,
            "printed_name": printed_name,
            "meaning": meaning,
            "signed_at": signed_at,
        }
    )


def _failures_since(username: str, since: datetime) -> int:
    return SignatureFailure.objects.filter(username_entered__iexact=username, failed_at__gte=since).count()


def _record_failure(*, acting_user: Any, username: str, record: models.Model, meaning: str, why: str) -> None:
    with transaction.atomic():
        failure = SignatureFailure(
            attempted_by=acting_user,
            username_entered=username[:150],
            content_type=ContentType.objects.get_for_model(record),
            object_id=record.pk,
            meaning=meaning if meaning in SignatureMeaning.values else SignatureMeaning.REVIEWED,
            why=why,
        )
        save_audited(failure, acting_user=acting_user, reason=why)


def authenticate_signer(
    *,
    request: SignatureRequest,
    record: models.Model,
    acting_user: Any,
    allowed_meanings: set[str],
    required_permission: str | None = None,
    signer_must_be_acting_user: bool = True,
) -> Any:
    """Check the typed credentials; record and refuse a wrong password, a locked signer, a wrong meaning."""
    if request.meaning not in allowed_meanings:
        labels = ", ".join(sorted(SignatureMeaning(m).label for m in allowed_meanings))
        raise DomainError(f"This record cannot be signed with that meaning. Allowed: {labels}.", code="bad_meaning")
    require_reason(request.reason, what="this signature")

    window = timedelta(minutes=settings.STROMA_SIGNATURE_LOCK_MINUTES)
    limit = settings.STROMA_SIGNATURE_FAILURE_LIMIT
    if _failures_since(request.username, timezone.now() - window) >= limit:
        _record_failure(
            acting_user=acting_user,
            username=request.username,
            record=record,
            meaning=request.meaning,
            why="signing locked",
        )
        raise DomainError(
            f"Signing is locked for {request.username} after {limit} wrong passwords; "
            f"try again in {settings.STROMA_SIGNATURE_LOCK_MINUTES} minutes or ask the lab manager.",
            code="signing_locked",
        )

    signer = get_user_model().objects.filter(username__iexact=request.username, is_active=True).first()
    if signer is None or not signer.check_password(request.password):
        _record_failure(
            acting_user=acting_user,
            username=request.username,
            record=record,
            meaning=request.meaning,
            why="wrong username or password",
        )
        left = limit - _failures_since(request.username, timezone.now() - window)
        if left <= 0:
            raise DomainError(
                f"Wrong username or password. Signing is now locked for {request.username} "
                f"for {settings.STROMA_SIGNATURE_LOCK_MINUTES} minutes.",
                code="signing_locked",
            )
        raise DomainError(
            f"Wrong username or password; nothing was signed. {left} attempt(s) left before signing is locked.",
            code="wrong_password",
        )
    if signer_must_be_acting_user and signer.pk != acting_user.pk:
        _record_failure(
            acting_user=acting_user,
            username=request.username,
            record=record,
            meaning=request.meaning,
            why="signed as another person",
        )
        raise DomainError(
            f"Sign with your own username: you are logged in as {acting_user.username}.", code="not_own_signature"
        )
    if required_permission and not signer.has_perm(required_permission):
        raise DomainError(
            f"{signer.printed_name} is not authorised to sign this as “{SignatureMeaning(request.meaning).label}”.",
            code="not_authorised",
        )
    return signer


def signature_apply(*, record: models.Model, signer: Any, meaning: str, reason: str) -> Signature:
    """Write the signature; call inside the transaction of the step it signs."""
    signed_at = timezone.now()
    record_hash = canonical_hash(record_content(record))
    signature = Signature(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        signer=signer,
        printed_name=signer.printed_name,
        meaning=meaning,
        reason=reason.strip(),
        signed_at=signed_at,
        record_hash=record_hash,
        content_hash=manifestation_hash(
            record_hash=record_hash,
            signer_id=signer.pk,
            printed_name=signer.printed_name,
            meaning=meaning,
            signed_at=signed_at,
        ),
    )
    save_audited(signature, acting_user=signer, reason=f"signed: {SignatureMeaning(meaning).label}")
    return signature


def record_sign(
    *,
    record: models.Model,
    acting_user: Any,
    request: SignatureRequest,
    allowed_meanings: set[str],
    required_permission: str | None = None,
) -> Signature:
    """Sign a record on its own (no other state change rides on the signature)."""
    signer = authenticate_signer(
        request=request,
        record=record,
        acting_user=acting_user,
        allowed_meanings=allowed_meanings,
        required_permission=required_permission,
    )
    with transaction.atomic():
        locked = type(record)._default_manager.select_for_update(of=("self",)).get(pk=record.pk)
        return signature_apply(record=locked, signer=signer, meaning=request.meaning, reason=request.reason)


@dataclass(frozen=True)
class SignatureCheck:
    signature: Signature
    record_unchanged: bool
    manifestation_intact: bool

    @property
    def valid(self) -> bool:
        return self.record_unchanged and self.manifestation_intact


def signature_check(signature: Signature, record: models.Model) -> SignatureCheck:
    """Recompute both hashes: has the record, or the signature's own text, changed since signing?"""
    current = canonical_hash(record_content(record))
    manifestation = manifestation_hash(
        record_hash=signature.record_hash,
        signer_id=signature.signer_id,
        printed_name=signature.printed_name,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
    )
    return SignatureCheck(signature, current == signature.record_hash, manifestation == signature.content_hash)


def signatures_for(record: models.Model) -> list[SignatureCheck]:
    content_type = ContentType.objects.get_for_model(record)
    rows = Signature.objects.filter(content_type=content_type, object_id=record.pk).select_related("signer")
    return [signature_check(sig, record) for sig in rows]


# Records that may be signed on their own from the generic signing page: meanings and the
# permission the signer needs. Steps whose signature changes a status (release, infusion)
# sign inside their own service instead.
SIGNABLE: dict[str, tuple[set[str], str]] = {
    "lims.custodyevent": ({SignatureMeaning.WITNESSED}, "lims.sign_witnessed"),
}
