"""Celery tasks of the cross-cutting app: thin, take ids, idempotent."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from lims.integrity import signatures_report_to_qa, signatures_verify
from lims.reminders import reminders_sweep
from lims.services import scan_report_to_qa


@shared_task(acks_late=True)
def report_scan_to_qa(scan_attempt_id: int) -> bool:
    """Tell QA about a forged or unknown code; running twice reports once."""
    return scan_report_to_qa(scan_attempt_id=scan_attempt_id)


@shared_task(acks_late=True, ignore_result=True)
def reminders_sweep_task() -> dict[str, int]:
    """The one periodic task: derive what is due, record it once, send it once (lims.reminders)."""
    result = reminders_sweep(now=timezone.now())
    return {
        "created": len(result.created),
        "resolved": result.resolved,
        "escalated": result.escalated,
        "queued": result.queued,
        "mails": result.mails,
    }


@shared_task(acks_late=True, ignore_result=True)
def signatures_verify_task() -> dict[str, int]:
    """Nightly: re-verify every signature and tell QA about any record changed after signing (lims.integrity)."""
    report = signatures_verify()
    mails = signatures_report_to_qa(report)
    return {"checked": report.checked, "valid": report.valid, "broken": len(report.broken), "mails": mails}
