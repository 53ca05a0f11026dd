"""Acceptance 2: a real Celery worker and beat, against Redis and PostgreSQL, remind and mail a due feed."""

from __future__ import annotations

import datetime as dt

import pytest

from lims.models import Notification, Reminder
from manufacturing.reminders import FEED_DUE
from tests.integration.conftest import wait_for
from tests.reminders.conftest import culture_seeded
from tests.reminders.processes import celery_with_beat, sent_mail

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_beat_and_a_worker_turn_a_due_feed_into_one_reminder_and_one_e_mail(
    transactional_db, tmp_path, study, clinician, operator, qa_officer, password
):
    _, [flask], _ = culture_seeded(
        85, study=study, clinician=clinician, operator=operator, qa_officer=qa_officer, password=password
    )

    with celery_with_beat(tmp_path, sweep_seconds=2) as celery:
        reminder = wait_for(
            lambda: Reminder.objects.filter(kind=FEED_DUE, object_id=flask.pk).first(),
            timeout=60,
            what="beat and the worker to record the feed reminder",
        )
        mails = wait_for(
            lambda: [m for m in sent_mail(celery.mail_folder) if f"Feed flask {flask.code}" in m.body],
            timeout=30,
            what="the worker to e-mail the operator",
        )
        sweeps = wait_for(
            lambda: (n := celery.worker_log().count("reminders_sweep_task[")) >= 6 and n,
            timeout=30,
            what="two more sweeps after the e-mail",
        )
        assert celery.processes["worker"].poll() is None

    assert reminder.due_at == flask.seeded_at + dt.timedelta(hours=84)
    assert reminder.title == f"Feed flask {flask.code} (batch {flask.batch.lot_number}, P0)"
    [mail] = mails
    assert mail.to == operator.email
    notification = Notification.objects.get(reminder=reminder, recipient=operator)
    assert notification.pk in mail.notification_ids
    assert notification.sent_at is not None
    history = Notification.history.filter(id=notification.pk).latest()
    assert history.history_user.username == "stroma-system"
    assert Reminder.objects.filter(kind=FEED_DUE, object_id=flask.pk).count() == 1
    all_ids = [i for m in sent_mail(tmp_path / "mail") for i in m.notification_ids]
    assert len(all_ids) == len(set(all_ids)), "every outbox row went out once"
    print(f"\nthe worker ran {sweeps // 2} sweeps sent by beat and mailed {len(all_ids)} outbox row(s), each once")
