"""The home page as the operator's due board, the header badge, the inbox, and the acknowledge/snooze forms."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.urls import reverse

from lims.models import NotificationPreference, Reminder, ReminderStatus
from tests.reminders.conftest import hours, sweep_at


def body(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def due(flasks):
    """The two flasks' observations fell due an hour ago; the clock stands there and the sweep has run."""
    moment = flasks[0].seeded_at + hours(24)
    sweep_at(moment)
    with time_machine.travel(moment + hours(1), tick=False):
        yield list(Reminder.objects.order_by("object_id"))


def test_the_home_page_lists_what_is_due_now_with_acknowledge_buttons_and_the_badge(client, flasks, due, operator):
    client.force_login(operator)
    response = client.get(reverse("home"))
    text = body(response)
    assert response.status_code == 200
    assert 'id="due-due-now"' in text
    for flask in flasks:
        assert f"Observe flask {flask.code}" in text
    assert text.count('data-action="acknowledge"') == 2
    assert re.search(r'id="reminder-badge"[^>]*>Reminders <span[^>]*>2 due</span>', text)
    assert "Your recent scans" in text


def test_an_overdue_reminder_is_listed_as_overdue(client, flasks, operator):
    moment = flasks[0].seeded_at + hours(24)
    sweep_at(moment)
    with time_machine.travel(moment + hours(5), tick=False):
        client.force_login(operator)
        text = body(client.get(reverse("home")))
    assert 'id="due-overdue"' in text
    assert 'id="due-due-now"' not in text


def test_what_falls_due_later_today_is_shown_before_it_is_a_reminder(client, flasks, operator):
    with time_machine.travel(flasks[0].seeded_at + hours(23), tick=False):
        client.force_login(operator)
        text = body(client.get(reverse("home")))
    if 'id="due-later-today"' not in text:
        pytest.skip("seeded late in the evening: 24 h later is tomorrow, not later today")
    assert f"Observe flask {flasks[0].code}" in text
    assert "Not yet due" in text
    assert not Reminder.objects.exists()


def test_nothing_due_says_so_and_other_roles_see_nothing_of_the_operators(client, due, qa_officer):
    client.force_login(qa_officer)
    text = body(client.get(reverse("home")))
    assert 'id="nothing-due"' in text
    assert "Observe flask" not in text
    assert re.search(r'id="reminder-badge"[^>]*>Reminders</a>', text), "no count when nothing is due"


def test_acknowledging_from_the_home_page_returns_there_with_a_message(client, due, operator):
    reminder = due[0]
    client.force_login(operator)
    response = client.post(reverse("reminder-acknowledge", args=[reminder.pk]), {"next": reverse("home")}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert f"Acknowledged: {reminder.title}." in body(response)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.ACKNOWLEDGED
    assert Reminder.history.filter(id=reminder.pk).latest().history_user == operator
    assert "Taken on, not yet done" in body(response)


def test_a_snooze_without_a_reason_is_refused_with_the_message(client, due, operator):
    client.force_login(operator)
    response = client.post(reverse("reminder-snooze", args=[due[0].pk]), {"minutes": "60", "reason": ""}, follow=True)
    assert "Please give a reason for snoozing a reminder" in body(response)
    assert Reminder.objects.get(pk=due[0].pk).snoozed_until is None


def test_a_snooze_with_a_reason_moves_it_to_the_inbox_snoozed_list(client, due, operator):
    client.force_login(operator)
    client.post(reverse("reminder-snooze", args=[due[0].pk]), {"minutes": "120", "reason": "autoclave running"})
    text = body(client.get(reverse("reminder-inbox")))
    assert 'id="due-snoozed"' in text
    assert "autoclave running" in text
    assert re.search(r'id="reminder-badge"[^>]*>Reminders <span[^>]*>1 due</span>', text)


def test_the_outsider_and_another_role_are_refused_in_words(client, due, outsider, qa_officer):
    reminder = due[0]
    client.force_login(outsider)
    text = body(client.post(reverse("reminder-acknowledge", args=[reminder.pk]), follow=True))
    assert "Your role does not allow you to acknowledge reminders." in text
    client.force_login(qa_officer)
    text = body(client.post(reverse("reminder-acknowledge", args=[reminder.pk]), follow=True))
    assert "is for the Cleanroom operator role" in text
    assert Reminder.objects.get(pk=reminder.pk).status == ReminderStatus.OPEN


def test_the_reminder_pages_need_a_login(client, due):
    assert client.get(reverse("reminder-inbox"))["Location"].startswith(reverse("login"))
    response = client.post(reverse("reminder-acknowledge", args=[due[0].pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.get(reverse("reminder-acknowledge", args=[due[0].pk])).status_code == 302


def test_a_person_switches_to_the_daily_digest_from_the_inbox(client, operator):
    client.force_login(operator)
    response = client.post(reverse("reminder-preferences"), {"daily_digest": "on"}, follow=True)
    assert "Reminder e-mail: one daily digest." in body(response)
    assert NotificationPreference.objects.get(user=operator).daily_digest is True
    assert "checked" in body(client.get(reverse("reminder-inbox")))


def test_an_unsafe_next_address_is_ignored(client, due, operator):
    client.force_login(operator)
    response = client.post(reverse("reminder-acknowledge", args=[due[0].pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("reminder-inbox")


def test_the_badge_stops_counting_at_99_plus(client, flasks, due, operator):
    """A hundred open reminders or ten thousand: the badge says "99+ due" and its count reads at most 100 rows."""
    from lims.reminders import BADGE_MAX, badge_count, badge_text

    template = due[0]
    Reminder.objects.bulk_create(
        Reminder(
            kind=template.kind,
            content_type=template.content_type,
            object_id=template.object_id,
            due_at=template.due_at - hours(n + 1),
            audience_role=template.audience_role,
            item_code=template.item_code,
            title=template.title,
            status=ReminderStatus.OPEN,
        )
        for n in range(BADGE_MAX + 5)
    )
    assert badge_count(operator) == BADGE_MAX + 1
    assert (badge_text(0), badge_text(7), badge_text(BADGE_MAX), badge_text(BADGE_MAX + 1)) == (
        "",
        "7 due",
        "99 due",
        "99+ due",
    )
    client.force_login(operator)
    home = body(client.get(reverse("home")))
    assert re.search(r'id="reminder-badge"[^>]*>Reminders <span[^>]*>99\+ due</span>', home)
