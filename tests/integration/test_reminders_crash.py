"""Acceptance 3: a worker killed (SIGKILL) in the middle of a sweep, then started again, loses and repeats nothing.

STROMA_SWEEP_TEST_DELAY_MS (a test-only setting) makes the worker pause 1 s before each e-mail,
inside the transaction that claimed the rows, so the kill lands mid-sweep: some people mailed,
some not. The killed transaction rolls back, its row locks go with the dropped connection, and the
next sweep, run by the new worker, mails the rest.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lims.models import Notification, Reminder
from lims.roles import OPERATOR
from tests.factories import UserFactory
from tests.integration.conftest import wait_for
from tests.reminders.conftest import culture_seeded
from tests.reminders.processes import celery_with_beat, sent_mail

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
OPERATORS = 6


def test_a_worker_killed_mid_sweep_and_restarted_sends_every_reminder_once(
    transactional_db, tmp_path, study, clinician, operator, qa_officer, password
):
    people = [operator, *(UserFactory(username=f"op{n}", role=OPERATOR) for n in range(OPERATORS - 1))]
    culture_seeded(
        30, study=study, clinician=clinician, operator=operator, qa_officer=qa_officer, password=password, count=2
    )

    with celery_with_beat(tmp_path, sweep_seconds=2, delay_ms=1000) as celery:

        def part_way():
            mailed = len(sent_mail(celery.mail_folder))
            marked = Notification.objects.filter(sent_at__isnull=False).values("message_id").distinct().count()
            return 2 <= mailed == marked < OPERATORS and mailed

        before_kill = wait_for(part_way, timeout=60, what="the sweep to be part-way through its e-mails")
        celery.kill("worker")
        assert celery.processes["worker"].returncode == -9
        unsent_at_kill = Notification.objects.filter(sent_at__isnull=True).count()
        celery.start("worker-2")
        wait_for(
            lambda: not Notification.objects.filter(sent_at__isnull=True).exists(),
            timeout=90,
            what="the new worker to send the rest",
        )
        wait_for(lambda: celery.worker_log().count("succeeded in") >= 2, timeout=30, what="one more quiet sweep")

    mails = sent_mail(tmp_path / "mail")
    carried = Counter(i for m in mails for i in m.notification_ids)
    expected = {(reminder.pk, person.pk) for reminder in Reminder.objects.all() for person in people}
    delivered = set(Notification.objects.filter(pk__in=carried).values_list("reminder_id", "recipient_id"))
    lost = expected - delivered
    duplicates = [pk for pk, times in carried.items() if times > 1]
    print(
        f"\nRELIABILITY worker-crash killed after {before_kill} of {OPERATORS} e-mails "
        f"({unsent_at_kill} outbox rows unsent); "
        f"after the restart: {len(mails)} e-mails carrying {sum(carried.values())} rows; "
        f"{len(lost)} lost, {len(duplicates)} duplicate"
    )
    assert Reminder.objects.count() == 2, "one observation reminder per flask, not one per sweep"
    assert len(mails) == OPERATORS
    assert sorted(m.to for m in mails) == sorted(p.email for p in people)
    assert lost == set()
    assert duplicates == []
    assert set(carried) == set(Notification.objects.values_list("pk", flat=True))
    assert unsent_at_kill > 0
