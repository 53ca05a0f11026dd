"""API tokens for devices and integrations, and the idempotency keys of state-changing calls."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from lims.models import Audited
from lims.roles import ROLES


class ApiToken(Audited):
    """A bearer token for one person's device or integration, limited to one of their roles.

    Only a SHA-256 of the token is stored: the token itself is shown once, when it is issued.
    A token acts within its owner's permissions AND its role, so a later change of the owner's
    groups narrows it at once. Revoking keeps the row (and its history); it never comes back.
    """

    name = models.CharField(max_length=80, help_text="Which device or integration holds it.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    role = models.CharField(max_length=40, choices=[(role, role) for role in ROLES])
    prefix = models.CharField(max_length=16, help_text="The token's first characters, to recognise it in lists.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True) | models.Q(revoked_at__gte=models.F("created_at")),
                name="api_token_revoked_after_created",
            ),
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.name} ({self.prefix}…, {self.role}, {state})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(Audited):
    """The first response to a state-changing call made with an Idempotency-Key.

    The unique key (owner, key) is claimed inside the transaction of the call itself, so a
    concurrent replay waits for the first to commit and then finds its response: one call, one
    record, whatever the number of retries.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="HMAC-SHA256 of method, path and canonical body.")
    status_code = models.PositiveSmallIntegerField(default=0, help_text="0 while the first call runs.")
    response_body = models.TextField(blank=True, help_text="The first response's JSON, byte for byte.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["owner", "key"], name="one_idempotency_record_per_owner_and_key"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] → {self.status_code}"
