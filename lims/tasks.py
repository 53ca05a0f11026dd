"""Celery tasks of the cross-cutting app: thin, take ids, idempotent."""

from __future__ import annotations

from celery import shared_task

from lims.services import scan_report_to_qa


@shared_task(acks_late=True)
def report_scan_to_qa(scan_attempt_id: int) -> bool:
    """Tell QA about a forged or unknown code; running twice reports once."""
    return scan_report_to_qa(scan_attempt_id=scan_attempt_id)
