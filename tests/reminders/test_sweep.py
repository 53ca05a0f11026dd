"""The sweep: what is due is read from the records, recorded once, resolved by the step, escalated once."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from lims.audit import system_user
from lims.celery import app
from lims.models import Notification, NotificationChannel, Reminder, ReminderStatus
from lims.reminders import due_items, reminder_acknowledge, reminder_snooze, reminders_sweep, rules
from lims.roles import LAB_MANAGER, OPERATOR, QA, ROLES
from lims.tasks import reminders_sweep_task
from manufacturing.models import Flask
from manufacturing.reminders import (
    CULTURE_OVERDUE,
    FEED_DUE,
    HARVEST_WINDOW,
    LOT_EXPIRING,
    OBSERVATION_DUE,
    PASSAGE_SUGGESTED,
)
from manufacturing.selectors import flask_due
from manufacturing.services.culture import Observation, flask_discard, flask_feed, flask_observe
from samples.models import ProtocolVersion
from tests.manufacturing.helpers import released_lot, seeded_flasks
from tests.reminders.conftest import hours, mailed_notification_ids, reminder_keys, sweep_at


def test_nothing_is_due_before_its_time_and_the_observation_falls_due_24_h_after_seeding(flasks, operator):
    seeded = flasks[0].seeded_at
    assert sweep_at(seeded + hours(24) - dt.timedelta(seconds=1)).created == []

    result = sweep_at(seeded + hours(24))

    assert reminder_keys() == {(OBSERVATION_DUE, f.pk, seeded + hours(24)) for f in flasks}
    reminder = Reminder.objects.get(object_id=flasks[0].pk)
    assert reminder.audience_role == OPERATOR
    assert reminder.title.startswith(f"Observe flask {flasks[0].code}")
    row = Reminder.history.get(id=reminder.pk)
    assert row.history_user == system_user()
    assert row.history_change_reason.startswith("sweep: due, Observe flask")
    assert result.mails == 1, "one e-mail to the operator lists both flasks"
    [message] = mail.outbox
    assert message.to == [operator.email]
    assert flasks[0].code in message.body
    assert flasks[1].code in message.body


def test_a_second_sweep_creates_and_sends_nothing_again(flasks):
    moment = flasks[0].seeded_at + hours(90)
    first = sweep_at(moment)
    second = sweep_at(moment)
    later = sweep_at(moment + dt.timedelta(minutes=5))

    assert len(first.created) == 4, "feed and observation for each of two flasks"
    assert second.created == []
    assert later.created == []
    assert second.mails == later.mails == 0
    assert Reminder.objects.count() == 4
    assert set(mailed_notification_ids().values()) == {1}


def test_the_database_refuses_a_second_reminder_with_the_same_key(flasks):
    sweep_at(flasks[0].seeded_at + hours(24))
    existing = Reminder.objects.first()
    duplicate = Reminder(
        kind=existing.kind,
        content_type_id=existing.content_type_id,
        object_id=existing.object_id,
        due_at=existing.due_at,
        item_code=existing.item_code,
        title=existing.title,
        audience_role=existing.audience_role,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_a_feed_after_the_due_time_resolves_the_reminder_and_the_next_feed_falls_due_84_h_later(
    flask, operator, media_lots
):
    due = flask.seeded_at + hours(84)
    sweep_at(due)
    reminder = Reminder.objects.get(kind=FEED_DUE, object_id=flask.pk)

    with time_machine.travel(due + hours(1), tick=False):
        feed = flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)
        result = reminders_sweep()

    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.RESOLVED
    assert reminder.resolution.startswith("done: next due")
    assert Reminder.history.filter(id=reminder.pk).latest().history_change_reason.startswith("sweep: resolved")
    assert result.resolved >= 1
    sweep_at(feed.occurred_at + hours(84))
    assert (FEED_DUE, flask.pk, feed.occurred_at + hours(84)) in reminder_keys(status=ReminderStatus.OPEN)


def test_a_flask_that_leaves_culture_resolves_all_its_reminders(flask, operator):
    sweep_at(flask.seeded_at + hours(90))
    assert Reminder.objects.filter(object_id=flask.pk, status=ReminderStatus.OPEN).count() == 2

    with time_machine.travel(flask.seeded_at + hours(91), tick=False):
        flask_discard(flask=flask, acting_user=operator, reason="dropped in the hood")
        reminders_sweep()

    mine = Reminder.objects.filter(object_id=flask.pk, content_type__model="flask")
    assert set(mine.values_list("status", flat=True)) == {ReminderStatus.RESOLVED}
    assert all(r.resolution.startswith("no longer due") for r in mine)


def test_the_rules_agree_with_the_flask_page_reading_of_what_is_due(flask):
    moment = flask.seeded_at + hours(1)
    items, failed = due_items(now=moment)
    assert failed == set()
    mine = {i.kind: i.due_at for i in items if i.object_id == flask.pk and i.model is Flask}
    page = {d.what: d.at for d in flask_due(Flask.objects.get(pk=flask.pk), list(flask.events.all()), now=moment)}
    assert mine[FEED_DUE] == page["Feed"]
    assert mine[OBSERVATION_DUE] == page["Observe"]


def _observe(flask, operator, confluence):
    return flask_observe(
        flask=flask, acting_user=operator, observation=Observation(confluence_percent=confluence, morphology_ok=True)
    )


def test_a_passage_is_suggested_once_from_the_first_observation_at_the_threshold(flask, operator):
    start = flask.seeded_at
    events = []
    for day, confluence in ((1, 40), (2, 72), (3, 85)):
        with time_machine.travel(start + hours(24 * day), tick=False):
            events.append(_observe(flask, operator, confluence))
            reminders_sweep()

    suggested = Reminder.objects.filter(kind=PASSAGE_SUGGESTED)
    assert list(suggested.values_list("due_at", flat=True)) == [events[1].occurred_at]
    assert "85 % confluent" not in suggested.get().title, "the title is written when it falls due"


def test_no_passage_is_suggested_at_the_protocols_passage_limit(flask, operator):
    Flask.objects.filter(pk=flask.pk).update(passage_number=flask.batch.protocol.passage_limit)
    with time_machine.travel(flask.seeded_at + hours(24), tick=False):
        _observe(flask, operator, 90)
        reminders_sweep()
    assert not Reminder.objects.filter(kind=PASSAGE_SUGGESTED).exists()


def test_the_harvest_window_and_the_overdue_culture_count_calendar_days_from_seeding(batch, flasks):
    batch.refresh_from_db()
    protocol = batch.protocol
    first = protocol.target_culture_days - protocol.culture_days_tolerance
    last = protocol.target_culture_days + protocol.culture_days_tolerance

    sweep_at(batch.seeded_at + dt.timedelta(days=last))

    assert (HARVEST_WINDOW, batch.pk, batch.seeded_at + dt.timedelta(days=first)) in reminder_keys()
    assert (CULTURE_OVERDUE, batch.pk, batch.seeded_at + dt.timedelta(days=last)) in reminder_keys()
    window = Reminder.objects.get(kind=HARVEST_WINDOW)
    assert window.item_code == batch.lot_number
    assert f"culture days {first}–{last}" in window.title


def test_a_released_lot_in_use_is_flagged_14_days_before_it_expires_to_qa(
    batch, operator, qa_officer, media_lots, settings
):
    short = released_lot("MEM-alpha", operator, qa_officer, lot_number="SHORT-1", days_left=20)
    seeded_flasks(batch, operator, [short, media_lots[1]], count=1)
    assert settings.STROMA_LOT_EXPIRY_WARNING_DAYS == 14
    warn_day = short.expiry_date - dt.timedelta(days=14)
    warn_at = dt.datetime.combine(warn_day, dt.time(0), tzinfo=timezone.get_default_timezone())
    sweep_at(warn_at - dt.timedelta(seconds=1))
    assert not Reminder.objects.filter(kind=LOT_EXPIRING).exists()

    sweep_at(warn_at)
    reminder = Reminder.objects.get(kind=LOT_EXPIRING)
    assert reminder.due_at == warn_at
    assert reminder.audience_role == QA
    assert "SHORT-1" in reminder.title
    assert "still in use" in reminder.title
    assert Notification.objects.filter(reminder=reminder, recipient=qa_officer).exists()


def test_a_lot_no_flask_in_culture_uses_is_not_flagged(batch, operator, qa_officer, media_lots):
    short = released_lot("MEM-alpha", operator, qa_officer, lot_number="SHORT-2", days_left=10)
    [flask] = seeded_flasks(batch, operator, [short, media_lots[1]], count=1)
    flask_discard(flask=flask, acting_user=operator, reason="contaminated")
    sweep_at(flask.seeded_at + hours(1))
    assert not Reminder.objects.filter(kind=LOT_EXPIRING).exists()


def test_an_overdue_reminder_escalates_to_the_lab_manager_once_after_the_grace_period(flasks, lab_manager):
    due = flasks[0].seeded_at + hours(24)
    sweep_at(due)
    sweep_at(due + hours(4) - dt.timedelta(minutes=1))
    assert not Reminder.objects.filter(escalated_at__isnull=False).exists()

    mail.outbox.clear()
    sweep_at(due + hours(4))
    sweep_at(due + hours(5))

    escalated = Reminder.objects.filter(escalated_at__isnull=False)
    assert escalated.count() == 2
    rows = Notification.objects.filter(channel=NotificationChannel.ESCALATION)
    assert set(rows.values_list("recipient", flat=True)) == {lab_manager.pk}
    assert rows.count() == 2
    [message] = mail.outbox
    assert message.to == [lab_manager.email]
    assert message.subject.startswith("[Stroma] Escalated")
    assert Reminder.history.filter(escalated_at__isnull=False).values("id").distinct().count() == 2


def test_an_acknowledged_reminder_is_not_escalated_and_a_snoozed_one_waits_for_its_snooze(flasks, operator):
    due = flasks[0].seeded_at + hours(24)
    sweep_at(due)
    first, second = Reminder.objects.order_by("object_id")
    with time_machine.travel(due + hours(1), tick=False):
        reminder_acknowledge(reminder=first, acting_user=operator)
        reminder_snooze(reminder=second, acting_user=operator, minutes=240, reason="waiting for the incubator")

    sweep_at(due + hours(5))
    assert not Reminder.objects.filter(escalated_at__isnull=False).exists()
    sweep_at(due + hours(9))
    assert list(Reminder.objects.filter(escalated_at__isnull=False)) == [second]


def test_a_protocol_with_a_zero_interval_is_skipped_and_logged_not_divided_by(flasks, caplog):
    protocol = flasks[0].batch.protocol
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA ignore_check_constraints = 1")
    else:  # dropped inside the test's transaction, so it comes back when the test rolls back
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE samples_protocolversion DROP CONSTRAINT protocol_intervals_positive")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    try:
        ProtocolVersion.objects.filter(pk=protocol.pk).update(feed_interval_hours=0)
    finally:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA ignore_check_constraints = 0")

    with caplog.at_level(logging.WARNING, logger="lims.reminders"):
        sweep_at(flasks[0].seeded_at + hours(100))

    assert not Reminder.objects.filter(kind=FEED_DUE).exists()
    assert Reminder.objects.filter(kind=OBSERVATION_DUE).count() == 2, "the other rules still work"
    warnings = [r.getMessage() for r in caplog.records if "feed interval of 0" in r.getMessage()]
    assert len(warnings) == 1, "logged once per sweep, not once per flask"
    assert "RA-MSC protocol v1" in warnings[0]


def test_a_rule_that_fails_leaves_its_reminders_alone_and_the_others_run(flasks, caplog):
    from lims import reminders as registry

    sweep_at(flasks[0].seeded_at + hours(24))
    original = registry._RULES[OBSERVATION_DUE]

    def broken(ctx):
        raise ZeroDivisionError("a bug in a rule")

    registry._RULES[OBSERVATION_DUE] = registry.ReminderRule(
        kind=original.kind, label=original.label, audience=original.audience, escalates=True, find=broken
    )
    try:
        with caplog.at_level(logging.ERROR, logger="lims.reminders"):
            sweep_at(flasks[0].seeded_at + hours(90))
    finally:
        registry._RULES[OBSERVATION_DUE] = original

    assert Reminder.objects.filter(kind=OBSERVATION_DUE, status=ReminderStatus.OPEN).count() == 2
    assert Reminder.objects.filter(kind=FEED_DUE).count() == 2
    assert any("flask_observation_due failed" in r.getMessage() for r in caplog.records)


def test_every_rule_names_a_role_as_its_audience():
    registered = rules()
    assert {FEED_DUE, OBSERVATION_DUE, PASSAGE_SUGGESTED, HARVEST_WINDOW, CULTURE_OVERDUE, LOT_EXPIRING} <= set(
        registered
    )
    assert all(rule.audience in ROLES for rule in registered.values())
    assert registered[LOT_EXPIRING].audience == QA
    assert registered[FEED_DUE].audience == OPERATOR
    assert LAB_MANAGER not in {r.audience for r in registered.values()}, "the lab manager hears of escalations"


def test_one_periodic_task_sweeps_reminders_every_five_minutes_beside_the_nightly_signature_check(settings):
    schedule = app.conf.beat_schedule
    assert sorted(schedule) == ["reminders-sweep", "signatures-verify"]
    entry = schedule["reminders-sweep"]
    assert entry["task"] == "lims.tasks.reminders_sweep_task"
    assert entry["schedule"] == 300.0 == settings.STROMA_SWEEP_MINUTES * 60
    assert entry["options"]["expires"] == 300.0
    assert app.conf.timezone == "UTC"
    assert app.conf.enable_utc is True
    assert reminders_sweep_task.acks_late is True
