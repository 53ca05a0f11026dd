"""Acceptance 1: a 28-day culture swept every 5 minutes across a clock change, in the site's zone.

Europe/London leaves summer time on 25 October 2026, inside the 28 days from 10 October. A
simulated operator answers every feed, observation and passage reminder 30 minutes after it
appears; the batch overruns its culture window (escalated) and is harvested on day 25. What the
sweep created is compared with what an independent reading of the recorded events says it should
have: the same reminders, none missing, none doubled, each created at the first sweep that could
know of it; every e-mail once; the harvest window and the digest at the same local wall-clock time
before and after the change.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from contextlib import suppress
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from lims.errors import DomainError
from lims.models import Notification, NotificationChannel, Reminder, ReminderStatus
from lims.reminders import notification_preference_set, reminders_sweep
from manufacturing.models import EventKind, Flask, FlaskStatus
from manufacturing.reminders import (
    CULTURE_OVERDUE,
    FEED_DUE,
    HARVEST_WINDOW,
    LOT_EXPIRING,
    OBSERVATION_DUE,
    PASSAGE_SUGGESTED,
)
from manufacturing.services.culture import (
    Observation,
    Passage,
    Seeding,
    batch_harvest,
    flask_feed,
    flask_observe,
    flask_passage,
)
from samples.models import ProtocolVersion
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch, vessel
from tests.reminders.conftest import mailed_notification_ids

LONDON = ZoneInfo("Europe/London")
START = dt.datetime(2026, 10, 10, 9, 0, tzinfo=LONDON).astimezone(dt.UTC)  # 08:00 UTC, summer time
CLOCK_CHANGE = dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)
SWEEPS = 28 * 24 * 12  # 8,064
END = START + (SWEEPS - 1) * STEP
REACTION = dt.timedelta(minutes=30)
# Off the 5-minute grid on purpose, so reminders fall due between sweeps.
FEED_HOURS, OBSERVE_HOURS = Decimal("83.9"), Decimal("23.9")
TARGET_DAYS, TOLERANCE_DAYS, THRESHOLD, PASSAGE_LIMIT = 21, 3, 70, 4


def first_sweep(at_or_after: dt.datetime, *, strictly_after: dt.datetime | None = None) -> dt.datetime:
    """The first sweep of the simulation at or after a moment (and after something was recorded)."""
    step_us = STEP // dt.timedelta(microseconds=1)
    us = (at_or_after - START) // dt.timedelta(microseconds=1)
    moment = START + dt.timedelta(microseconds=-(-us // step_us) * step_us)
    if strictly_after is not None and moment <= strictly_after:
        moment = first_sweep(strictly_after + dt.timedelta(microseconds=1))
    return moment


def local_days(days: int, at: dt.datetime = START) -> dt.datetime:
    wall = at.astimezone(LONDON).replace(tzinfo=None) + dt.timedelta(days=days)
    return wall.replace(tzinfo=LONDON).astimezone(dt.UTC)


def confluence(flask: Flask, now: dt.datetime) -> int:
    return min(95, 20 + int((now - flask.seeded_at) / dt.timedelta(hours=24) * 15))


class Bench:
    """The simulated operator: answers each flask reminder 30 minutes after it appears."""

    def __init__(self, operator, media, trypsin):
        self.operator, self.media, self.trypsin = operator, media, trypsin
        self.todo: dict[int, tuple[dt.datetime, str, int]] = {}

    def saw(self, reminder_ids: list[int], now: dt.datetime) -> None:
        if not reminder_ids:
            return
        for pk, kind, object_id in Reminder.objects.filter(pk__in=reminder_ids).values_list("pk", "kind", "object_id"):
            if kind in {FEED_DUE, OBSERVATION_DUE, PASSAGE_SUGGESTED}:
                self.todo[pk] = (now + REACTION, kind, object_id)

    def act(self, now: dt.datetime) -> None:
        for pk, (when, kind, flask_id) in list(self.todo.items()):
            if when > now:
                continue
            del self.todo[pk]
            # The flask may have been passaged or harvested meanwhile: then there is nothing left to do.
            with suppress(DomainError):
                self._do(kind, Flask.objects.get(pk=flask_id), now)

    def _do(self, kind: str, flask: Flask, now: dt.datetime) -> None:
        if kind == FEED_DUE:
            flask_feed(flask=flask, acting_user=self.operator, volume_ml="15", lots=self.media)
        elif kind == OBSERVATION_DUE:
            observation = Observation(confluence_percent=confluence(flask, now), morphology_ok=True)
            flask_observe(flask=flask, acting_user=self.operator, observation=observation)
        else:
            seeding = Seeding(vessel_type=vessel("T175"), cells_per_flask=300_000, medium_volume_ml="30")
            passage = Passage(
                detachment_lot=self.trypsin,
                total_cells=4_200_000,
                viable_cells=4_000_000,
                children=1,
                seeding=seeding,
                media_lots=self.media,
            )
            flask_passage(flask=flask, acting_user=self.operator, passage=passage)


def expected_reminders(batch, short_lot) -> dict[tuple[str, int, dt.datetime], dt.datetime]:
    """(kind, item, due time) → the sweep that should create it, read from the events alone."""
    expected: dict[tuple[str, int, dt.datetime], dt.datetime] = {}
    for flask in Flask.objects.filter(batch=batch).prefetch_related("events"):
        events = sorted(flask.events.all(), key=lambda e: (e.occurred_at, e.pk))
        closed = next((e.recorded_at for e in events if e.kind in {EventKind.PASSAGE, EventKind.HARVEST}), END)
        for kind, kinds, every in (
            (FEED_DUE, {EventKind.SEED, EventKind.FEED}, FEED_HOURS),
            (OBSERVATION_DUE, {EventKind.SEED, EventKind.OBSERVATION}, OBSERVE_HOURS),
        ):
            anchors = [e for e in events if e.kind in kinds]
            for anchor, following in zip(anchors, [*anchors[1:], None], strict=True):
                due = anchor.occurred_at + dt.timedelta(hours=float(every))
                made = first_sweep(due, strictly_after=anchor.recorded_at)
                if made <= min(closed, END) and (following is None or following.recorded_at >= made):
                    expected[(kind, flask.pk, due)] = made
        high = [e for e in events if e.kind == EventKind.OBSERVATION and (e.confluence_percent or 0) >= THRESHOLD]
        if high and flask.passage_number < PASSAGE_LIMIT:
            made = first_sweep(high[0].occurred_at, strictly_after=high[0].recorded_at)
            if made <= min(closed, END):
                expected[(PASSAGE_SUGGESTED, flask.pk, high[0].occurred_at)] = made
    window, overdue = local_days(TARGET_DAYS - TOLERANCE_DAYS), local_days(TARGET_DAYS + TOLERANCE_DAYS)
    expected[(HARVEST_WINDOW, batch.pk, window)] = first_sweep(window)
    expected[(CULTURE_OVERDUE, batch.pk, overdue)] = first_sweep(overdue)
    warn = dt.datetime.combine(short_lot.expiry_date - dt.timedelta(days=14), dt.time(0), tzinfo=LONDON)
    expected[(LOT_EXPIRING, short_lot.pk, warn.astimezone(dt.UTC))] = first_sweep(warn)
    return expected


def test_a_28_day_culture_swept_every_5_minutes_across_the_october_clock_change(
    study, clinician, operator, second_operator, qa_officer, lab_manager, password
):
    with override_settings(TIME_ZONE="Europe/London"), time_machine.travel(START, tick=False) as clock:
        media = [
            released_lot("MEM-alpha", operator, qa_officer),
            released_lot("Human platelet lysate", operator, qa_officer, lot_number="HPL-LONG"),
        ]
        short_lot = released_lot("Human platelet lysate", operator, qa_officer, lot_number="HPL-SHORT", days_left=16)
        trypsin = released_lot("TrypLE Select", operator, qa_officer)
        notification_preference_set(acting_user=second_operator, daily_digest=True)
        batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
        ProtocolVersion.objects.filter(pk=batch.protocol_id).update(
            feed_interval_hours=FEED_HOURS,
            observation_interval_hours=OBSERVE_HOURS,
            target_culture_days=TARGET_DAYS,
            culture_days_tolerance=TOLERANCE_DAYS,
            passage_confluence_percent=THRESHOLD,
            passage_limit=PASSAGE_LIMIT,
        )
        seeded_flasks(batch, operator, [media[0], short_lot], count=2)
        harvest_at = local_days(25) + dt.timedelta(hours=1)  # day 25, 10:00 site time
        bench = Bench(operator, media, trypsin)
        mail.outbox.clear()

        started = time.perf_counter()
        for n in range(SWEEPS):
            now = START + n * STEP
            clock.move_to(now)
            bench.saw(reminders_sweep(now=now).created, now)
            bench.act(now)
            if now == harvest_at:
                batch_harvest(
                    batch=batch, acting_user=operator, viable_cells=20_000_000, viability_percent="95", volume_ml="50"
                )
        elapsed = time.perf_counter() - started

        expected = expected_reminders(batch, short_lot)
        actual = {
            (k, o, d): c for k, o, d, c in Reminder.objects.values_list("kind", "object_id", "due_at", "created_at")
        }
        kinds = Counter(kind for kind, _, _ in actual)
        late = max(actual[key] - key[2] for key in actual)
        print(
            f"\n{SWEEPS:,} sweeps over 28 days in {elapsed:.1f} s ({elapsed / SWEEPS * 1000:.2f} ms per sweep); "
            f"{len(actual)} reminders {dict(sorted(kinds.items()))}; latest creation {late} after due; "
            f"{len(mail.outbox)} e-mails"
        )

        missing = sorted(set(expected) - set(actual), key=lambda k: k[2])
        extra = sorted(set(actual) - set(expected), key=lambda k: k[2])
        assert not missing, f"missing {missing[:5]}"
        assert not extra, f"unexpected {extra[:5]}"
        wrong_time = {key: (actual[key], made) for key, made in expected.items() if actual[key] != made}
        assert not wrong_time, f"created at the wrong sweep: {list(wrong_time.items())[:5]}"
        assert all(dt.timedelta(0) <= actual[key] - key[2] < STEP for key in actual if key[0] != PASSAGE_SUGGESTED)
        assert set(kinds) == {
            FEED_DUE,
            OBSERVATION_DUE,
            PASSAGE_SUGGESTED,
            HARVEST_WINDOW,
            CULTURE_OVERDUE,
            LOT_EXPIRING,
        }
        assert kinds[PASSAGE_SUGGESTED] == PASSAGE_LIMIT * 2, "P0→P1 … P3→P4 for both lineages"

        # The harvest window opens at the seeding's wall-clock time, after the clock went back.
        window = Reminder.objects.get(kind=HARVEST_WINDOW)
        assert timezone.localtime(window.due_at).strftime("%Y-%m-%d %H:%M %Z") == "2026-10-28 09:00 GMT"
        assert (START.hour, window.due_at.astimezone(dt.UTC).hour) == (8, 9)
        # Hour intervals are elapsed time: a feed due across the change comes an hour earlier on the wall clock.
        across = [k for k in expected if k[0] == FEED_DUE and k[2] - dt.timedelta(hours=83.9) < CLOCK_CHANGE < k[2]]
        assert across, "the simulation has a feed interval spanning the clock change"
        due = across[0][2]
        fed = due - dt.timedelta(hours=83.9)
        wall = timezone.localtime(due).replace(tzinfo=None) - timezone.localtime(fed).replace(tzinfo=None)
        assert wall == dt.timedelta(hours=82.9)

        # Every outbox row went out in exactly one e-mail; nothing is left unsent.
        rows = Notification.objects.all()
        assert not rows.filter(sent_at__isnull=True).exists()
        assert mailed_notification_ids() == Counter(dict.fromkeys(rows.values_list("pk", flat=True), 1))
        per_person = Counter(rows.values_list("reminder_id", "recipient_id", "channel"))
        assert set(per_person.values()) == {1}
        operators_rows = rows.filter(recipient__in=[operator, second_operator], channel__in=["email", "digest"])
        assert operators_rows.count() == 2 * (len(actual) - kinds[LOT_EXPIRING])

        # The digest goes out at 07:00 site time every day: 06:00 UTC in summer time, 07:00 UTC after.
        digests = rows.filter(channel=NotificationChannel.DIGEST)
        sent = sorted({s for s in digests.values_list("sent_at", flat=True) if s is not None})
        assert {timezone.localtime(s).strftime("%H:%M") for s in sent} == {"07:00"}
        assert {s.astimezone(dt.UTC).hour for s in sent} == {6, 7}
        assert len(sent) == len({timezone.localtime(s).date() for s in sent}), "one digest a day"
        assert digests.values("message_id").distinct().count() == len(sent)

        # Escalated once, to the lab manager, 4 h after the culture window closed; nothing else escalated.
        [escalated] = Reminder.objects.filter(escalated_at__isnull=False)
        assert escalated.kind == CULTURE_OVERDUE
        assert escalated.escalated_at == escalated.due_at + dt.timedelta(hours=4)
        assert rows.filter(channel=NotificationChannel.ESCALATION).count() == 1
        assert [m.to for m in mail.outbox if m.subject.startswith("[Stroma] Escalated")] == [[lab_manager.email]]

        # After the harvest nothing is open: the flasks left culture, the lot is no longer in use.
        assert not Reminder.objects.filter(status=ReminderStatus.OPEN).exists()
        assert not Flask.objects.filter(status=FlaskStatus.IN_CULTURE).exists()
