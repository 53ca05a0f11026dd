"""Arrange helpers for reminder tests: a seeded culture, a sweep at a chosen moment, what was mailed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from django.core import mail

from lims.models import Reminder
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch


@pytest.fixture
def media_lots(operator: Any, qa_officer: Any) -> list[Any]:
    return [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]


@pytest.fixture
def batch(study: Any, clinician: Any, operator: Any, password: str) -> Any:
    return started_batch(accepted_aspirate(study, clinician, operator, password), operator)


@pytest.fixture
def flasks(batch: Any, operator: Any, media_lots: list[Any]) -> list[Any]:
    return seeded_flasks(batch, operator, media_lots)


@pytest.fixture
def flask(flasks: list[Any]) -> Any:
    return flasks[0]


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def reminder_keys(**filters: Any) -> set[tuple[str, int, dt.datetime]]:
    return set(Reminder.objects.filter(**filters).values_list("kind", "object_id", "due_at"))


def mailed_notification_ids(outbox: list[Any] | None = None) -> Counter[int]:
    """How many sent e-mails carried each outbox row (read from the X-Stroma-Notifications header)."""
    counts: Counter[int] = Counter()
    for message in mail.outbox if outbox is None else outbox:
        header = message.extra_headers.get("X-Stroma-Notifications", "")
        counts.update(int(i) for i in header.split(",") if i)
    return counts


def sweep_at(moment: dt.datetime, **kwargs: Any) -> Any:
    """Sweep with the clock standing at ``moment``, as the beat task would then."""
    import time_machine

    from lims.reminders import reminders_sweep

    with time_machine.travel(moment, tick=False):
        return reminders_sweep(**kwargs)


def culture_seeded(
    hours_ago: float, *, study: Any, clinician: Any, operator: Any, qa_officer: Any, password: str, count: int = 1
) -> tuple[Any, list[Any], list[Any]]:
    """A batch seeded ``hours_ago`` (through the services, with the clock turned back), its flasks and lots."""
    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now() - hours(hours_ago), tick=True):
        media = [
            released_lot("MEM-alpha", operator, qa_officer),
            released_lot("Human platelet lysate", operator, qa_officer),
        ]
        batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
        flasks = seeded_flasks(batch, operator, media, count=count)
    return batch, flasks, media
