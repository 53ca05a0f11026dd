"""Acceptance 6: one sweep takes as many queries for 1,000 flasks in culture as for 10.

Flasks and their seeding events are bulk-created here (no history) because only the sweep is
measured. On SQLite, Django splits a bulk INSERT into statements of at most 999 parameters, so the
sweep that creates 1,000 reminders at once is compared on PostgreSQL, where it is one statement.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lims.models import Notification, Reminder
from lims.reminders import fixed_rows
from manufacturing.models import CultureEvent, EventKind, Flask
from manufacturing.reminders import OBSERVATION_DUE, _flasks_query
from tests.manufacturing.helpers import vessel
from tests.reminders.conftest import hours, sweep_at


def add_flasks(batch, operator, count: int, seeded_at: dt.datetime) -> None:
    start = Flask.objects.count()
    flasks = Flask.objects.bulk_create(
        Flask(
            code=f"FL-Q{start + n:06d}",
            batch=batch,
            vessel_type=vessel("T75"),
            passage_number=0,
            seeded_at=seeded_at,
            cells_seeded=11_250_000,
            medium_volume_ml=15,
            seeding_density_per_cm2=150_000,
        )
        for n in range(count)
    )
    CultureEvent.objects.bulk_create(
        CultureEvent(flask=f, kind=EventKind.SEED, occurred_at=seeded_at, recorded_by=operator) for f in flasks
    )


def queries_of_a_sweep(at: dt.datetime) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        result = sweep_at(at)
    return len(captured), result


@pytest.fixture
def one_flask(flasks):
    """Flasks seeded through the services (the batch is in culture), and the caches warm."""
    sweep_at(flasks[0].seeded_at + dt.timedelta(minutes=1))
    return flasks[0]


def test_a_quiet_sweep_reads_1000_flasks_with_the_same_queries_as_10(one_flask, batch, operator):
    seeded = one_flask.seeded_at
    add_flasks(batch, operator, 10 - Flask.objects.count(), seeded)
    sweep_at(seeded + hours(24))
    ten, _ = queries_of_a_sweep(seeded + hours(24) + dt.timedelta(minutes=5))

    add_flasks(batch, operator, 990, seeded - hours(1))
    sweep_at(seeded + hours(24) + dt.timedelta(minutes=10))
    assert Reminder.objects.filter(kind=OBSERVATION_DUE).count() == 1000
    thousand, result = queries_of_a_sweep(seeded + hours(24) + dt.timedelta(minutes=15))

    print(f"\nquiet sweep: {ten} queries with 10 flasks in culture, {thousand} with 1,000")
    assert result.created == []
    assert result.mails == 0
    assert ten == thousand


@pytest.mark.postgres
def test_a_sweep_that_records_1000_reminders_takes_as_many_queries_as_one_that_records_10(one_flask, batch, operator):
    seeded = one_flask.seeded_at
    add_flasks(batch, operator, 10 - Flask.objects.count(), seeded)
    ten, first = queries_of_a_sweep(seeded + hours(24))

    add_flasks(batch, operator, 990, seeded + hours(1))
    thousand, second = queries_of_a_sweep(seeded + hours(25))

    print(f"\nsweep recording new reminders: {ten} queries for 10 flasks, {thousand} for 1,000")
    assert (len(first.created), len(second.created)) == (10, 990)
    assert first.mails == second.mails == 1, "one e-mail to the one operator lists them all"
    assert Notification.objects.filter(sent_at__isnull=True).count() == 0
    assert ten == thousand


def test_a_fixed_query_returns_exactly_what_the_orm_returns(flasks):
    assert fixed_rows("test.flasks_in_culture", _flasks_query) == list(_flasks_query())
    assert len(fixed_rows("test.flasks_in_culture", _flasks_query)) == 2
