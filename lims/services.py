"""State changes of the cross-cutting records: labels, scans and custody."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from lims import labels
from lims.audit import require_reason, save_audited, system_user
from lims.db import serialize_on
from lims.errors import DomainError
from lims.models import (
    ContainerCondition,
    CustodyEvent,
    Deviation,
    DeviationSource,
    Label,
    LabelKind,
    ScanAttempt,
    ScanOutcome,
)
from lims.notifications import enqueue_on_commit, notify_role
from lims.roles import QA, require_permission
from lims.values import number

# A clock a minute or two ahead on a tablet must not make a real hand-over "in the future".
CLOCK_SKEW = timedelta(minutes=5)


def label_create(*, item: models.Model, kind: str, code: str, subject_code: str, acting_user: Any) -> Label:
    """Give a new item its label; called inside the transaction that creates the item."""
    if kind not in LabelKind.values:
        raise DomainError(f"Unknown label kind {kind!r}.")
    labels.label_payload(code)  # refuses a code a scanner could not type
    label = Label(
        code=code,
        kind=kind,
        content_type=ContentType.objects.get_for_model(item),
        object_id=item.pk,
        subject_code=subject_code,
        created_by=acting_user,
    )
    save_audited(label, acting_user=acting_user, reason=f"label {code} issued")
    return label


@dataclass(frozen=True)
class ScanResult:
    attempt: ScanAttempt
    label: Label | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.label is not None


_UNKNOWN = (
    "This label verifies, but no item with code {code} exists in Stroma. "
    "Nothing was opened; the attempt has been recorded."
)


def scan_resolve(*, payload: str, acting_user: Any) -> ScanResult:
    """Turn a scanned payload into its label; every attempt, good or bad, is recorded."""
    require_permission(acting_user, "lims.view_label", action="scan labels")
    cleaned = (payload or "").strip()[:255]
    label: Label | None = None
    try:
        code = labels.verify_payload(cleaned)
    except labels.LabelError as exc:
        outcome = ScanOutcome.FORGED if exc.code == "forged" else ScanOutcome.MALFORMED
        error = exc.message
    else:
        label = Label.objects.filter(code=code).first()
        outcome = ScanOutcome.OPENED if label else ScanOutcome.UNKNOWN
        error = "" if label else _UNKNOWN.format(code=code)
    with transaction.atomic():
        attempt = ScanAttempt(payload=cleaned or "(empty)", outcome=outcome, label=label, scanned_by=acting_user)
        save_audited(attempt, acting_user=acting_user, reason=f"scan: {outcome}")
        if outcome in {ScanOutcome.FORGED, ScanOutcome.UNKNOWN}:
            from lims.tasks import report_scan_to_qa

            enqueue_on_commit(report_scan_to_qa, attempt.pk)
    return ScanResult(attempt=attempt, label=label, error=error)


def require_scanned(*, payload: str, expected_code: str, acting_user: Any) -> Label:
    """A step on a physical item starts by scanning it: the scan is recorded and must be that item."""
    result = scan_resolve(payload=payload, acting_user=acting_user)
    if result.label is None:
        raise DomainError(result.error, code="bad_scan")
    if result.label.code != expected_code:
        raise DomainError(
            f"You scanned {result.label.code}, but this step is for {expected_code}. "
            "Scan the label of the item in your hands.",
            code="wrong_item",
        )
    return result.label


def scan_report_to_qa(*, scan_attempt_id: int) -> bool:
    """Mail QA about a refused scan, once: the row is locked and marked in the same transaction."""
    with transaction.atomic():
        attempt = (
            ScanAttempt.objects.select_for_update(of=("self",)).select_related("scanned_by").get(pk=scan_attempt_id)
        )
        if attempt.reported_to_qa_at is not None:
            return False
        attempt.reported_to_qa_at = timezone.now()
        save_audited(
            attempt,
            acting_user=system_user(),
            reason="refused scan reported to QA",
            update_fields=["reported_to_qa_at"],
        )
        transaction.on_commit(
            lambda: notify_role(
                role=QA,
                subject=f"Refused scan: {attempt.get_outcome_display()}",
                body=(
                    f"{attempt.scanned_by.printed_name} scanned {attempt.payload!r} at "
                    f"{timezone.localtime(attempt.scanned_at):%Y-%m-%d %H:%M %Z}. "
                    f"Outcome: {attempt.get_outcome_display()}."
                ),
            )
        )
    return True


def _temperature(value: object) -> Decimal:
    # The range is checked before rounding: quantize() raises on a number as large as 1e400.
    temperature = number(value, "The temperature (°C)")
    if not Decimal("-200") <= temperature <= Decimal("60"):
        raise DomainError(f"A temperature of {temperature} °C is not physically plausible for a hand-over.")
    return temperature.quantize(Decimal("0.1"))


def custody_record(
    *,
    label: Label,
    acting_user: Any,
    handed_over_by: str,
    received_by: str,
    location: str,
    occurred_at: datetime,
    temperature_c: object,
    container_condition: str,
    note: str = "",
) -> CustodyEvent:
    """Record one hand-over of a labelled item."""
    require_permission(acting_user, "lims.add_custodyevent", action="record a custody hand-over")
    handed_over_by, received_by, location = handed_over_by.strip(), received_by.strip(), location.strip()
    if not handed_over_by or not received_by or not location:
        raise DomainError("Say who handed the item over, who received it, and where.")
    if handed_over_by.casefold() == received_by.casefold():
        raise DomainError("The person handing over and the person receiving must be different people.")
    if occurred_at > timezone.now() + CLOCK_SKEW:
        raise DomainError("A hand-over cannot be dated in the future.")
    if container_condition not in ContainerCondition.values:
        raise DomainError("Choose the container's condition from the list.")
    if container_condition != ContainerCondition.INTACT and not note.strip():
        raise DomainError("Describe what is wrong with the container in the note.")
    temperature = _temperature(temperature_c)
    with transaction.atomic():
        locked = Label.objects.select_for_update(of=("self",)).get(pk=label.pk)
        event = CustodyEvent(
            label=locked,
            handed_over_by=handed_over_by,
            received_by=received_by,
            location=location,
            occurred_at=occurred_at,
            temperature_c=temperature,
            container_condition=container_condition,
            note=note.strip(),
            recorded_by=acting_user,
        )
        save_audited(
            event,
            acting_user=acting_user,
            reason=require_reason(f"custody hand-over {handed_over_by} → {received_by} at {location}"),
        )
    return event


def deviation_open(
    *, record: models.Model, source: str, description: str, acting_user: Any, subject_code: str = ""
) -> Deviation:
    """Open a deviation for QA; called inside the transaction of the step that found it."""
    if source not in DeviationSource.values:
        raise DomainError(f"Unknown deviation source {source!r}.")
    year = timezone.now().year
    serialize_on(f"deviation-numbering-{year}")
    last = Deviation.objects.filter(code__startswith=f"DEV-{year}-").order_by("-code").first()
    number = int(last.code.rsplit("-", 1)[1]) + 1 if last else 1
    deviation = Deviation(
        code=f"DEV-{year}-{number:04d}",
        source=source,
        description=description,
        subject_code=subject_code,
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        opened_by=acting_user,
    )
    save_audited(deviation, acting_user=acting_user, reason=f"deviation opened: {description[:200]}")
    return deviation
