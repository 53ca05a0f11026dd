"""Bearer tokens for devices and integrations, and the backend that holds a token to its role.

The token's role is remembered on the user object of the request. ``TokenScopeBackend`` comes
first in AUTHENTICATION_BACKENDS and refuses (PermissionDenied stops Django's permission check)
every permission outside that role, so ``user.has_perm`` — in the API's permission class and
in every service's ``require_permission`` — answers "owner's permissions AND the token's role".
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from api.models import ApiToken
from api.tokens import token_for
from lims.roles import ROLE_PERMISSIONS

SCOPE_ATTRIBUTE = "_stroma_token_role"
KEYWORDS = (b"bearer", b"token")


def token_role(user: Any) -> str | None:
    """The role a request's token is limited to, or None for a session."""
    return getattr(user, SCOPE_ATTRIBUTE, None)


class TokenScopeBackend:
    """Grants nothing; refuses, for a token's request, every permission outside the token's role."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        role = token_role(user_obj)
        if role is not None and perm not in ROLE_PERMISSIONS.get(role, set()):
            raise PermissionDenied(f"An API token for the role “{role}” does not carry {perm}.")
        return False


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``; an unknown, revoked or orphaned token is refused with 401."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the token as “Authorization: Bearer <token>”.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("This API token is not known.") from exc
        token = token_for(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("This API token is not known.")
        if token.revoked_at is not None:
            when = timezone.localtime(token.revoked_at)
            raise exceptions.AuthenticationFailed(
                f"This API token ({token.name}) was revoked on {when:%Y-%m-%d %H:%M}; ask for a new one."
            )
        user = token.owner
        if not user.is_active or user.is_superuser:
            raise exceptions.AuthenticationFailed("This API token's account cannot use the API.")
        setattr(user, SCOPE_ATTRIBUTE, token.role)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="stroma-api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token limited to one role (see docs/api.md).",
        }
