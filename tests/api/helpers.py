"""Calling the API as a device would: a bearer token per person and role, JSON in and out."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import Group
from django.test import Client

from api.models import ApiToken
from api.tokens import TOKEN_PREFIX, api_token_issue, hash_token
from lims.roles import has_role


def token_for(user: Any, role: str, *, name: str = "test device") -> str:
    """Issue through the service when the person holds the role; otherwise arrange a token whose owner has
    since lost the role (the case that the scope intersection exists for)."""
    if has_role(user, role):
        return api_token_issue(owner=user, role=role, name=name, acting_user=user).raw
    group = Group.objects.get(name=role)
    user.groups.add(group)
    raw = api_token_issue(owner=user, role=role, name=name, acting_user=user).raw
    user.groups.remove(group)
    return raw


class Api:
    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.token = token

    def _headers(self, key: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        found = dict(headers or {})
        if self.token:
            found["Authorization"] = f"Bearer {self.token}"
        if key:
            found["Idempotency-Key"] = key
        return found

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get(path, params or {}, headers=self._headers(None, headers))

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        **headers: str,
    ) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type=content_type, headers=self._headers(key, headers))


def stored_token(raw: str) -> ApiToken:
    assert raw.startswith(TOKEN_PREFIX)
    return ApiToken.objects.get(key_hash=hash_token(raw))
