"""Telling people: e-mail to everyone holding a role, and enqueueing work without trusting the broker.

The broker may be down; a scan or an entry must still succeed. Work is therefore enqueued
after commit and a failed enqueue is logged, not raised; periodic sweeps find what was missed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger(__name__)


def role_addresses(role: str) -> list[str]:
    users = get_user_model().objects.filter(groups__name=role, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def notify_role(*, role: str, subject: str, body: str) -> int:
    recipients = role_addresses(role)
    if not recipients:
        logger.warning("No active %s with an e-mail address to tell: %s", role, subject)
        return 0
    return send_mail(f"[Stroma] {subject}", body, settings.DEFAULT_FROM_EMAIL, recipients)


def enqueue_on_commit(task: Any, *args: Any) -> None:
    """Send a task once the transaction commits; a broker outage must not fail the user's step."""

    def send() -> None:
        try:
            task.apply_async(args=args, retry=False)
        except Exception:  # the broker is down or unreachable; the next sweep catches up
            logger.exception("Could not enqueue %s%r; it will be picked up by the next sweep", task.name, args)

    transaction.on_commit(send)
