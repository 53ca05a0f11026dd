"""Acknowledge and snooze: recorded in history with the person; refused in words when not theirs to do."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lims.errors import DomainError
from lims.models import NotificationPreference, Reminder, ReminderStatus
from lims.reminders import notification_preference_set, reminder_acknowledge, reminder_snooze, reminders_sweep
from manufacturing.services.culture import flask_discard
from tests.reminders.conftest import hours, sweep_at


@pytest.fixture
def due(flasks):
    """Both flasks' observations fall due 24 h after seeding; the clock stands one hour later."""
    moment = flasks[0].seeded_at + hours(24)
    sweep_at(moment)
    with time_machine.travel(moment + hours(1), tick=False):
        yield Reminder.objects.filter(object_id=flasks[0].pk).get()


def test_acknowledging_records_who_and_when_in_the_history(due, operator):
    reminder_acknowledge(reminder=due, acting_user=operator)

    due.refresh_from_db()
    assert due.status == ReminderStatus.ACKNOWLEDGED
    assert due.acknowledged_by == operator
    row = Reminder.history.filter(id=due.pk).latest()
    assert (row.history_user, row.history_change_reason) == (operator, "acknowledged")
    assert row.status == ReminderStatus.ACKNOWLEDGED


def test_a_double_tap_on_acknowledge_records_once(due, operator):
    reminder_acknowledge(reminder=due, acting_user=operator)
    reminder_acknowledge(reminder=due, acting_user=operator)
    assert Reminder.history.filter(id=due.pk, status=ReminderStatus.ACKNOWLEDGED).count() == 1


def test_a_colleague_is_told_who_already_acknowledged_it(due, operator, second_operator):
    reminder_acknowledge(reminder=due, acting_user=operator)
    with pytest.raises(DomainError, match="already acknowledged by Olivia Operator"):
        reminder_acknowledge(reminder=due, acting_user=second_operator)


def test_acknowledging_a_reminder_of_another_role_is_refused_and_changes_nothing(due, qa_officer):
    before = Reminder.history.filter(id=due.pk).count()
    with pytest.raises(DomainError) as refused:
        reminder_acknowledge(reminder=due, acting_user=qa_officer)
    assert refused.value.message == (
        f"“{due.title}” is for the Cleanroom operator role; only someone holding that role can acknowledge it."
    )
    due.refresh_from_db()
    assert due.status == ReminderStatus.OPEN
    assert Reminder.history.filter(id=due.pk).count() == before


def test_an_outsider_can_neither_acknowledge_nor_snooze(due, outsider):
    with pytest.raises(DomainError, match="Your role does not allow you to acknowledge reminders"):
        reminder_acknowledge(reminder=due, acting_user=outsider)
    with pytest.raises(DomainError, match="Your role does not allow you to snooze reminders"):
        reminder_snooze(reminder=due, acting_user=outsider, minutes=30, reason="busy")


def test_the_lab_manager_may_acknowledge_a_reminder_escalated_to_them(flasks, lab_manager):
    moment = flasks[0].seeded_at + hours(24)
    sweep_at(moment)
    reminder = Reminder.objects.filter(object_id=flasks[0].pk).get()
    with pytest.raises(DomainError, match="only someone holding that role"):
        reminder_acknowledge(reminder=reminder, acting_user=lab_manager)

    sweep_at(moment + hours(4))
    with time_machine.travel(moment + hours(4), tick=False):
        reminder_acknowledge(reminder=Reminder.objects.get(pk=reminder.pk), acting_user=lab_manager)
    assert Reminder.history.filter(id=reminder.pk).latest().history_user == lab_manager


def test_a_done_reminder_cannot_be_acknowledged(flasks, operator):
    moment = flasks[0].seeded_at + hours(24)
    sweep_at(moment)
    with time_machine.travel(moment + hours(1), tick=False):
        flask_discard(flask=flasks[0], acting_user=operator, reason="cracked flask")
        reminders_sweep()
        reminder = Reminder.objects.filter(object_id=flasks[0].pk).get()
        with pytest.raises(DomainError, match="is already done"):
            reminder_acknowledge(reminder=reminder, acting_user=operator)


def test_snoozing_needs_a_reason_and_records_it_with_the_time(due, operator):
    with pytest.raises(DomainError, match="Please give a reason for snoozing a reminder"):
        reminder_snooze(reminder=due, acting_user=operator, minutes=60, reason="  ")
    assert Reminder.history.filter(id=due.pk).count() == 1

    reminder_snooze(reminder=due, acting_user=operator, minutes=60, reason="cabinet being cleaned")

    due.refresh_from_db()
    row = Reminder.history.filter(id=due.pk).latest()
    assert due.snoozed_until == due.due_at + hours(2)
    assert (due.snooze_reason, due.snoozed_by) == ("cabinet being cleaned", operator)
    assert row.history_user == operator
    assert row.history_change_reason.startswith("snoozed until ")
    assert row.history_change_reason.endswith(": cabinet being cleaned")


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_a_snooze_outside_one_minute_to_a_day_is_refused(due, operator, minutes):
    with pytest.raises(DomainError, match="between 1 minute and 24 hours"):
        reminder_snooze(reminder=due, acting_user=operator, minutes=minutes, reason="busy")


def test_an_acknowledged_reminder_cannot_be_snoozed(due, operator):
    reminder_acknowledge(reminder=due, acting_user=operator)
    with pytest.raises(DomainError, match="is acknowledged; only an open reminder can be snoozed"):
        reminder_snooze(reminder=due, acting_user=operator, minutes=30, reason="later")


def test_a_person_chooses_the_daily_digest_and_the_choice_is_audited(operator):
    notification_preference_set(acting_user=operator, daily_digest=True)
    notification_preference_set(acting_user=operator, daily_digest=True)
    preference = NotificationPreference.objects.get(user=operator)
    assert preference.daily_digest is True
    [row] = NotificationPreference.history.filter(id=preference.pk)
    assert (row.history_user, row.history_change_reason) == (operator, "reminder e-mail: one daily digest")
    notification_preference_set(acting_user=operator, daily_digest=False)
    assert NotificationPreference.history.filter(id=preference.pk).latest().daily_digest is False


def test_the_snooze_moves_the_reminder_out_of_due_now_until_it_ends(due, operator):
    from lims.reminders import badge_count

    assert badge_count(operator) == 2
    reminder_snooze(reminder=due, acting_user=operator, minutes=30, reason="gowning")
    assert badge_count(operator) == 1
    assert badge_count(operator, now=due.due_at + hours(1) + dt.timedelta(minutes=31)) == 2
