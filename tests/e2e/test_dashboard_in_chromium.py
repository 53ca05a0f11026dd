"""Acceptance 7: the operator's home page in Chromium shows what is due; acknowledging is recorded in history."""

from __future__ import annotations

import re

from lims.models import Reminder, ReminderStatus
from lims.reminders import reminders_sweep
from tests.e2e.conftest import screenshot
from tests.reminders.conftest import culture_seeded


def test_the_operator_sees_the_due_list_at_home_and_acknowledges_and_snoozes_from_it(
    page, login, study, clinician, operator, qa_officer, password
):
    _, flasks, _ = culture_seeded(
        25, study=study, clinician=clinician, operator=operator, qa_officer=qa_officer, password=password, count=2
    )
    reminders_sweep()

    login(operator)
    due_now = page.locator("#due-due-now")
    due_now.wait_for()
    rows = due_now.locator("tr.due-row")
    assert rows.count() == 2
    assert [f"Observe flask {f.code}" in rows.nth(i).inner_text() for i, f in enumerate(flasks)] == [True, True]
    assert rows.first.locator(".due-status").inner_text() == "Due now", "the status is a word, not only a colour"
    assert re.fullmatch(r"Reminders\s*2 due", page.locator("#reminder-badge").inner_text())
    screenshot(page, "home-due-board")

    first = Reminder.objects.get(object_id=flasks[0].pk)
    page.locator(f'tr[data-reminder="{first.pk}"] button[data-action="acknowledge"]').click()
    page.locator(".message").filter(has_text="Acknowledged").wait_for()
    assert page.locator("#due-acknowledged").inner_text().count("Acknowledged by Olivia Operator") == 1
    assert re.fullmatch(r"Reminders\s*1 due", page.locator("#reminder-badge").inner_text())

    second = Reminder.objects.get(object_id=flasks[1].pk)
    row = page.locator(f'tr[data-reminder="{second.pk}"]')
    row.locator("summary").click()
    row.locator("select[name=minutes]").select_option("60")
    row.locator("input[name=reason]").fill("Biosafety cabinet being cleaned")
    row.locator("button", has_text="Snooze").click()
    page.locator(".message").filter(has_text="Snoozed until").wait_for()
    assert page.locator("#due-due-now").count() == 0
    assert page.locator("#reminder-badge").inner_text().strip() == "Reminders"
    screenshot(page, "home-due-board-acknowledged")

    first.refresh_from_db()
    assert first.status == ReminderStatus.ACKNOWLEDGED
    row = Reminder.history.filter(id=first.pk).latest()
    assert (row.history_user, row.history_change_reason) == (operator, "acknowledged")
    snoozed = Reminder.history.filter(id=second.pk).latest()
    assert snoozed.history_user == operator
    assert snoozed.history_change_reason.endswith(": Biosafety cabinet being cleaned")
