"""Acceptance 5: with Redis stopped, a feed is still recorded and pages still load; after Redis returns,
the next sweep derives the reminder from what was recorded meanwhile.

Stopping Redis affects anyone else using it for a few seconds, so the outage is kept short.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from lims.models import Reminder, ReminderStatus
from manufacturing.reminders import FEED_DUE
from manufacturing.services.culture import flask_feed
from tests.integration.conftest import wait_for
from tests.reminders.conftest import culture_seeded
from tests.reminders.processes import celery_with_beat

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def redis_answers() -> bool:
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "PONG"


def test_a_feed_recorded_while_redis_is_down_gets_its_reminder_after_redis_returns(
    transactional_db, tmp_path, client, study, clinician, operator, qa_officer, password
):
    _, [flask], media = culture_seeded(
        90, study=study, clinician=clinician, operator=operator, qa_officer=qa_officer, password=password
    )
    with celery_with_beat(tmp_path, sweep_seconds=2):
        first = wait_for(
            lambda: Reminder.objects.filter(kind=FEED_DUE, object_id=flask.pk).first(),
            timeout=60,
            what="the feed reminder from the seeding",
        )
        outage = time.monotonic()
        try:
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], check=False)
            wait_for(lambda: not redis_answers(), timeout=10, what="Redis to stop")
            time.sleep(1)  # a sweep that was running when Redis went away has finished

            fed_at = timezone.now() - dt.timedelta(hours=85)
            feed = flask_feed(
                flask=flask,
                acting_user=operator,
                volume_ml="15",
                lots=media,
                occurred_at=fed_at,
                backdate_reason="written on the bench sheet; entered after the network outage",
            )
            client.force_login(operator)
            assert client.get(reverse("home")).status_code == 200, "pages work without the broker"
            time.sleep(4)  # two sweep intervals: beat cannot reach the worker
            next_due = feed.occurred_at + dt.timedelta(hours=84)
            assert not Reminder.objects.filter(kind=FEED_DUE, due_at=next_due).exists()
        finally:
            if not redis_answers():
                subprocess.run(REDIS_START, check=True)
            wait_for(redis_answers, timeout=30, what="Redis to answer PING again")
        redis_down_for = time.monotonic() - outage

        reminder = wait_for(
            lambda: Reminder.objects.filter(kind=FEED_DUE, object_id=flask.pk, due_at=next_due).first(),
            timeout=90,
            what="the first sweep after Redis returned",
        )
        caught_up_after = time.monotonic() - outage

    first.refresh_from_db()
    print(
        f"\nRELIABILITY broker-outage Redis down for {redis_down_for:.1f} s; "
        f"reminder recorded {caught_up_after:.1f} s after the outage began"
    )
    assert first.status == ReminderStatus.RESOLVED
    assert first.resolution.startswith("done: next due")
    assert reminder.status == ReminderStatus.OPEN
    assert reminder.due_at < timezone.now(), "it fell due during the outage"
