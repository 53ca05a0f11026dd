"""Telling people: e-mail to everyone holding a role, and enqueueing work without trusting the broker.

The broker may be down; a scan or an entry must still succeed. Work is therefore enqueued
after commit and a failed enqueue is logged, not raised; periodic sweeps find what was missed.

Reminder e-mail goes through an outbox (lims.models.Notification): the sweep queues one row per
reminder, recipient and channel, and :func:`outbox_deliver` sends and marks them (docs/reminders.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from lims.db import try_serialize_on
from lims.models import Notification, NotificationChannel

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


# --- Reminder e-mail: the outbox (docs/reminders.md) ---------------------------------------------


@dataclass(frozen=True)
class Recipient:
    user_id: int
    daily_digest: bool


def reminder_recipients(roles: Iterable[str]) -> dict[str, list[Recipient]]:
    """Active members of each role who have an e-mail address, with their digest choice: one query."""
    from lims.models import User

    rows = (
        User.groups.through.objects.filter(group__name__in=list(roles), user__is_active=True)
        .exclude(user__email="")
        .values_list("group__name", "user_id", "user__notification_preference__daily_digest")
        .order_by("user_id")
    )
    found: dict[str, list[Recipient]] = {}
    for role, user_id, digest in rows:
        found.setdefault(role, []).append(Recipient(user_id=user_id, daily_digest=bool(digest)))
    return found


_IMMEDIATE = (NotificationChannel.EMAIL, NotificationChannel.ESCALATION)
_MAIL_LINES = 50


def outbox_deliver(*, now: dt.datetime | None = None) -> int:
    """Send what the outbox holds: one e-mail per person for everything due to them, digests once a day.

    Each person's rows are claimed with SELECT … FOR UPDATE SKIP LOCKED, the e-mail is sent, and the
    rows are marked sent in the same transaction: two sweeps at once never claim the same row, and
    a crash before the commit leaves the rows unsent, so the next sweep sends them (at least once;
    the only window for a repeat is between the mail server accepting the message and the commit).
    """
    from lims.reminders import fixed_rows

    now = now or timezone.now()
    pending = fixed_rows(
        "lims.outbox_unsent",
        lambda: Notification.objects.filter(sent_at__isnull=True).values_list("recipient_id", "channel", "created_at"),
    )
    sent = 0
    for recipient_id in sorted({r for r, channel, _ in pending if channel in _IMMEDIATE}):
        sent += _deliver_safely(recipient_id, _IMMEDIATE, digest_at=None)
    digest_at = _digest_moment(now)
    if digest_at is not None:
        # A digest carries what was queued before today's digest time; later rows wait for tomorrow's.
        waiting = {
            r for r, channel, created in pending if channel == NotificationChannel.DIGEST and created < digest_at
        }
        for recipient_id in sorted(waiting):
            sent += _deliver_safely(recipient_id, (NotificationChannel.DIGEST,), digest_at=digest_at)
    return sent


def _digest_moment(now: dt.datetime) -> dt.datetime | None:
    """Today's digest time in the site's zone once it has passed: a clock change moves it in UTC, not locally."""
    zone = timezone.get_default_timezone()
    local = now.astimezone(zone)
    moment = dt.datetime.combine(local.date(), dt.time(settings.STROMA_DIGEST_HOUR), tzinfo=zone)
    return moment if local >= moment else None


def _deliver_safely(recipient_id: int, channels: tuple[str, ...], *, digest_at: dt.datetime | None) -> int:
    try:
        return _deliver(recipient_id, channels, digest_at=digest_at)
    except Exception:  # the mail server refused or is down: the rows stay unsent for the next sweep
        logger.exception("Could not e-mail reminders to user %s; the next sweep tries again", recipient_id)
        return 0


def _deliver(recipient_id: int, channels: tuple[str, ...], *, digest_at: dt.datetime | None) -> int:
    from lims.audit import system_user

    with transaction.atomic():
        if not try_serialize_on(f"outbox:{recipient_id}"):
            return 0  # another sweep is e-mailing this person now: one e-mail from it, not two halves
        unsent = Q(recipient_id=recipient_id, channel__in=channels, sent_at__isnull=True)
        if digest_at is not None:
            unsent &= Q(created_at__lt=digest_at)
        claimed = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(unsent)
            .select_related("reminder", "recipient")
            .order_by("reminder__due_at", "id")
        )
        if not claimed:
            return 0
        if settings.STROMA_SWEEP_TEST_DELAY_MS:  # tests only: a window in which to kill the worker
            time.sleep(settings.STROMA_SWEEP_TEST_DELAY_MS / 1000)
        message = _reminder_mail(claimed, digest=digest_at is not None)
        message.send()
        sent_at = timezone.now()
        for row in claimed:
            row.sent_at, row.message_id = sent_at, message.extra_headers["Message-ID"]
        # Every claimed row gets the same two values: one UPDATE, where bulk_update writes a CASE
        # with a branch per row (PostgreSQL's JIT then spent over half an hour compiling one for
        # 36,000 rows). With no fields, bulk_update_with_history writes only each row's history row.
        Notification.objects.filter(pk__in=[row.pk for row in claimed]).update(
            sent_at=sent_at, message_id=message.extra_headers["Message-ID"]
        )
        bulk_update_with_history(
            claimed,
            Notification,
            [],
            default_user=system_user(),
            default_change_reason=f"sweep: sent by e-mail ({claimed[0].get_channel_display().lower()})",
            default_date=sent_at,
        )
    return 1


def _reminder_mail(rows: list[Notification], *, digest: bool) -> EmailMessage:
    reminders = [row.reminder for row in rows]
    escalated = [row.reminder for row in rows if row.channel == NotificationChannel.ESCALATION]
    first = reminders[0].title
    more = f" and {len(reminders) - 1} more" if len(reminders) > 1 else ""
    if digest:
        subject = f"Daily digest: {len(reminders)} reminder(s)"
    elif escalated:
        subject = f"Escalated, not done {settings.STROMA_REMINDER_GRACE_HOURS} h after due: {first}{more}"
    else:
        subject = f"Due: {first}{more}"
    lines = [f"Hello {rows[0].recipient.printed_name},", ""]
    if escalated:
        lines += [f"Not done {settings.STROMA_REMINDER_GRACE_HOURS} h after it fell due, so it comes to you:", ""]
    for reminder in reminders[:_MAIL_LINES]:
        lines.append(f"- {reminder.title}: due {timezone.localtime(reminder.due_at):%Y-%m-%d %H:%M %Z}")
    if len(reminders) > _MAIL_LINES:
        lines.append(f"- … and {len(reminders) - _MAIL_LINES} more in your inbox")
    lines += ["", f"Acknowledge or snooze them in your inbox: {settings.STROMA_SITE_URL}/reminders/"]
    return EmailMessage(
        subject=f"[Stroma] {subject}"[:250],
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[rows[0].recipient.email],
        headers={
            "Message-ID": make_msgid("stroma", domain="stroma.local"),
            # Which outbox rows this message carries: the audit trail, and the tests, read it.
            "X-Stroma-Notifications": ",".join(str(row.pk) for row in rows),
        },
    )
