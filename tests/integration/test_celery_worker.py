"""A change made inside a Celery task, by a real worker against Redis, names who and why."""

from __future__ import annotations

import pytest

from lims.labels import label_payload
from lims.models import ScanAttempt, ScanOutcome
from lims.services import scan_resolve
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_forged_scan_is_reported_by_the_worker_with_the_system_account_and_reason(
    celery_worker_process, operator, qa_officer
):
    result = scan_resolve(payload=label_payload("FL-000777"), acting_user=operator)
    assert result.attempt.outcome == ScanOutcome.UNKNOWN

    def reported():
        return ScanAttempt.objects.filter(pk=result.attempt.pk, reported_to_qa_at__isnull=False).exists()

    wait_for(reported, what="the worker to report the scan")
    assert celery_worker_process.poll() is None, "the worker is still running"
    latest = ScanAttempt.history.filter(id=result.attempt.pk).latest()
    assert latest.history_user.username == "stroma-system"
    assert latest.history_change_reason == "refused scan reported to QA"
    assert latest.reported_to_qa_at is not None
