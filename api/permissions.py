"""The pages' permission codenames, per view action, for every API call."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class RolePermission(BasePermission):
    """A view names, per action, the permission the page needs and the words of the refusal.

    ``view.rules`` maps an action ("list", "retrieve", "feed", …) to ``(permission, doing)``;
    an action with no rule is refused, so a new endpoint cannot be open by omission. A rule
    whose permission is None needs only a signed-in person (tokens manage themselves).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated("Sign in, or send an API token as “Authorization: Bearer <token>”.")
        action = getattr(view, "action", None) or request.method.lower()
        rules: dict[str, tuple[str | None, str]] = getattr(view, "rules", {})
        if action not in rules:
            raise exceptions.PermissionDenied("This call is not open to anyone.", code="forbidden")
        permission, doing = rules[action]
        if permission is not None and not request.user.has_perm(permission):
            raise exceptions.PermissionDenied(f"Your role does not allow you to {doing}.", code="forbidden")
        return True
