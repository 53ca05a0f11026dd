"""Acceptance 4: two sweeps at once on PostgreSQL record each reminder once and send each e-mail once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.core import mail
from django.db import connection

from lims.models import Notification, Reminder
from lims.reminders import SweepResult, reminders_sweep
from lims.roles import OPERATOR
from tests.factories import UserFactory
from tests.reminders.conftest import culture_seeded, mailed_notification_ids

pytestmark = pytest.mark.postgres
OPERATORS = 4


def test_two_sweeps_at_once_create_no_duplicate_reminder_and_send_no_duplicate_mail(
    transactional_db, settings, study, clinician, operator, qa_officer, password
):
    people = [operator, *(UserFactory(username=f"op{n}", role=OPERATOR) for n in range(OPERATORS - 1))]
    culture_seeded(
        90, study=study, clinician=clinician, operator=operator, qa_officer=qa_officer, password=password, count=3
    )
    settings.STROMA_SWEEP_TEST_DELAY_MS = 100  # each e-mail takes a moment, so the two sweeps overlap
    mail.outbox.clear()
    start = threading.Barrier(2)
    results: list[SweepResult] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            start.wait()
            results.append(reminders_sweep())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    created = [len(r.created) for r in results]
    mails = [r.mails for r in results]
    print(f"\ntwo sweeps at once: created {created} reminders, sent {mails} e-mails")
    assert sum(created) == Reminder.objects.count() == 6, "feed and observation for each of three flasks"
    assert sorted(created) == [0, 6], "the second sweep waited for the first and found the work done"
    assert Reminder.history.filter(history_type="+").count() == 6
    rows = Notification.objects.all()
    assert rows.count() == 6 * OPERATORS
    assert not rows.filter(sent_at__isnull=True).exists()
    assert sum(mails) == len(mail.outbox) == OPERATORS
    assert mailed_notification_ids() == Counter(dict.fromkeys(rows.values_list("pk", flat=True), 1))
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people)
