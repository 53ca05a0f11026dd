"""Release: specifications, QC results evaluated when entered, deviations, EM, and QA's decision.

Evaluation fails closed: a result that cannot be evaluated never counts as a pass. An OOS flag
is stored with its result and never recomputed away; a retest is a new result, and the OOS
result stops counting only when QA invalidates it, with a reason and a signature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.errors import DomainError
from lims.models import Deviation, DeviationSource, DeviationStatus, LabelKind
from lims.roles import require_permission
from lims.services import CLOCK_SKEW, deviation_open, label_create
from lims.signatures import SignatureRequest, authenticate_signer, signature_apply
from lims.values import number
from manufacturing.models import (
    BATCH_TRANSITIONS,
    EM_LIMITS,
    SPEC_TRANSITIONS,
    Batch,
    BatchStatus,
    Comparator,
    DeviationClosure,
    EmReading,
    Flask,
    FlaskStatus,
    ProcessingSession,
    QcFlag,
    QcResult,
    QcSample,
    ResultStatus,
    SessionBatch,
    SpecCriterion,
    Specification,
    SpecStatus,
)
from samples.models import Study

NUMERIC = {Comparator.AT_LEAST, Comparator.AT_MOST, Comparator.EQUALS, Comparator.ENDOTOXIN, Comparator.PASSAGE}
QUALITATIVE: dict[str, dict[str, bool]] = {
    Comparator.NOT_DETECTED: {"not detected": True, "detected": False},
    Comparator.NO_GROWTH: {"no growth": True, "growth detected": False},
    Comparator.NEGATIVE: {"negative": True, "positive": False},
}
AT_DOSE = {Comparator.ENDOTOXIN, Comparator.DOSE}
DECIDED = {BatchStatus.RELEASED, BatchStatus.CONDITIONALLY_RELEASED, BatchStatus.REJECTED}


# --- Evaluation (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    flag: str
    explanation: str


def evaluate(criterion: SpecCriterion, *, value: Decimal | None, qualifier: str, outcome: str, unit: str) -> Evaluation:
    """Judge one result against its criterion; anything that cannot be judged is not a pass."""
    comparator = criterion.comparator
    if comparator in QUALITATIVE:
        verdicts = QUALITATIVE[comparator]
        if value is not None or outcome not in verdicts:
            return Evaluation(QcFlag.NOT_EVALUABLE, f"expected one of: {', '.join(verdicts)}")
        passed = verdicts[outcome]
        return Evaluation(
            QcFlag.PASS if passed else QcFlag.OOS, f"{outcome} (required: {criterion.get_comparator_display()})"
        )
    if comparator == Comparator.DOSE:
        return Evaluation(QcFlag.AT_DOSE, "the viable cell dose is checked against the prescription at dose time")
    if value is None or outcome:
        return Evaluation(QcFlag.NOT_EVALUABLE, "a number is expected for this criterion")
    if criterion.unit and unit != criterion.unit:
        return Evaluation(QcFlag.NOT_EVALUABLE, f"unit {unit or '(none)'} does not match {criterion.unit}")
    if comparator == Comparator.ENDOTOXIN:
        return Evaluation(
            QcFlag.AT_DOSE, f"{qualifier}{value} {unit} is compared with 5 EU/kg × weight ÷ volume at dose time"
        )
    limit = criterion.limit
    if limit is None:
        return Evaluation(QcFlag.NOT_EVALUABLE, "the criterion has no limit")
    return _numeric(comparator, value, qualifier, limit, unit)


def _numeric(comparator: str, value: Decimal, qualifier: str, limit: Decimal, unit: str) -> Evaluation:
    shown = f"{qualifier}{value.normalize():f} {unit}".strip()
    symbols: dict[str, str] = {Comparator.AT_LEAST: "≥", Comparator.AT_MOST: "≤", Comparator.PASSAGE: "≤"}
    symbol = symbols.get(comparator, "=")
    required = f"{symbol} {limit.normalize():f} {unit}".strip()
    if comparator in (Comparator.AT_MOST, Comparator.PASSAGE):
        passed = value <= limit if qualifier in ("", "<") else None if value < limit else False
    elif comparator == Comparator.AT_LEAST:
        passed = value >= limit if qualifier in ("", ">") else None if value > limit else False
    else:
        passed = value == limit if not qualifier else None
    if passed is None:
        return Evaluation(QcFlag.NOT_EVALUABLE, f"{shown} cannot be compared with {required}")
    return Evaluation(QcFlag.PASS if passed else QcFlag.OOS, f"{shown} (required {required})")


# --- Specifications --------------------------------------------------------------------------------

_REFERENCE_COMPARATORS = {
    ">=": Comparator.AT_LEAST,
    "<=": Comparator.AT_MOST,
    "=": Comparator.EQUALS,
    "no growth": Comparator.NO_GROWTH,
    "negative": Comparator.NEGATIVE,
    "not detected": Comparator.NOT_DETECTED,
}


def criteria_from_reference(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Map the reference release table onto criteria (endotoxin, passage and dose get their own comparators)."""
    criteria = []
    for row in rows:
        attribute, comparator = row["attribute"], row["comparator"]
        if attribute == "Endotoxin":
            comparator = Comparator.ENDOTOXIN
        elif attribute == "Passage":
            comparator = Comparator.PASSAGE
        elif attribute == "Viable cell dose":
            comparator = Comparator.DOSE
        else:
            comparator = _REFERENCE_COMPARATORS[comparator]
        criteria.append(
            {
                "attribute": attribute,
                "method": row.get("method", ""),
                "comparator": comparator,
                "limit": row.get("limit"),
                "unit": row.get("unit", ""),
            }
        )
    return criteria


def specification_create(
    *,
    study: Study,
    acting_user: Any,
    criteria: list[dict[str, Any]],
    change_summary: str,
    allows_conditional_release: bool = False,
) -> Specification:
    """Draft a new specification version; QA approves it with a signature before use."""
    require_permission(acting_user, "manufacturing.approve_specification", action="draft specifications")
    change_summary = require_reason(change_summary, what="a specification version")
    if not criteria:
        raise DomainError("A specification needs at least one criterion.")
    with transaction.atomic():
        locked = Study.objects.select_for_update(of=("self",)).get(pk=study.pk)
        version = (locked.specifications.aggregate(v=Max("version"))["v"] or 0) + 1
        spec = Specification(
            study=locked,
            version=version,
            change_summary=change_summary,
            created_by=acting_user,
            allows_conditional_release=allows_conditional_release,
        )
        save_audited(spec, acting_user=acting_user, reason=change_summary)
        for position, row in enumerate(criteria, start=1):
            if row["comparator"] not in Comparator.values:
                raise DomainError(f"{row['attribute']}: unknown comparator {row['comparator']!r}.")
            if (
                row["comparator"] in (Comparator.AT_LEAST, Comparator.AT_MOST, Comparator.EQUALS)
                and row.get("limit") is None
            ):
                raise DomainError(f"{row['attribute']}: a numeric criterion needs a limit.")
            limit = None if row.get("limit") is None else number(row["limit"], f"{row['attribute']} limit")
            criterion = SpecCriterion(
                specification=spec,
                attribute=row["attribute"],
                method=row.get("method", ""),
                comparator=row["comparator"],
                limit=limit,
                unit=row.get("unit", ""),
                position=position,
            )
            save_audited(criterion, acting_user=acting_user, reason=change_summary)
    return spec


def specification_approve(
    *, specification: Specification, acting_user: Any, signature: SignatureRequest
) -> Specification:
    require_permission(acting_user, "manufacturing.approve_specification", action="approve specifications")
    signer = authenticate_signer(
        request=signature,
        record=specification,
        acting_user=acting_user,
        allowed_meanings={"approved"},
        required_permission="manufacturing.approve_specification",
    )
    with transaction.atomic():
        Study.objects.select_for_update(of=("self",)).get(pk=specification.study_id)
        spec = Specification.objects.select_for_update(of=("self",)).get(pk=specification.pk)
        if SpecStatus.APPROVED not in SPEC_TRANSITIONS[spec.status]:
            raise DomainError(f"{spec} is {spec.get_status_display().lower()} and cannot be approved.")
        for previous in Specification.objects.select_for_update(of=("self",)).filter(
            study_id=spec.study_id, status=SpecStatus.APPROVED
        ):
            previous.status = SpecStatus.SUPERSEDED
            save_audited(
                previous, acting_user=signer, reason=f"superseded by v{spec.version}", update_fields=["status"]
            )
        spec.status, spec.approved_at = SpecStatus.APPROVED, timezone.now()
        save_audited(spec, acting_user=signer, reason=signature.reason, update_fields=["status", "approved_at"])
        signature_apply(record=spec, signer=signer, meaning="approved", reason=signature.reason)
    return spec


# --- Release testing and results ---------------------------------------------------------------------


def batch_start_release_testing(*, batch: Batch, acting_user: Any) -> Batch:
    """Freeze the specification in force on the batch and record the passage result from the batch record."""
    require_permission(acting_user, "manufacturing.enter_qcresult", action="start release testing")
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).select_related("protocol", "subject").get(pk=batch.pk)
        if BatchStatus.RELEASE_TESTING not in BATCH_TRANSITIONS[locked.status]:
            raise DomainError(
                f"Batch {locked.lot_number} is {locked.get_status_display().lower()}; release "
                "testing starts after harvest."
            )
        spec = Specification.objects.filter(study_id=locked.subject.study_id, status=SpecStatus.APPROVED).first()
        if spec is None:
            raise DomainError("This study has no approved specification; QA must approve one first.")
        locked.status, locked.specification, locked.testing_started_at = (
            BatchStatus.RELEASE_TESTING,
            spec,
            timezone.now(),
        )
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"release testing started against {spec}",
            update_fields=["status", "specification", "testing_started_at"],
        )
        for criterion in spec.criteria.filter(comparator=Comparator.PASSAGE):
            highest = (
                (
                    Flask.objects.filter(batch=locked, status=FlaskStatus.HARVESTED).aggregate(p=Max("passage_number"))[
                        "p"
                    ]
                )
                or 0
            )
            result = _numeric(Comparator.PASSAGE, Decimal(highest), "", Decimal(locked.protocol.passage_limit), "")
            _save_result(
                locked,
                criterion,
                acting_user,
                result,
                numeric_value=Decimal(highest),
                qualifier="",
                qualitative_outcome="",
                unit="",
                method="from the batch record",
                instrument="",
                analyst="Stroma (batch record)",
                tested_at=timezone.now(),
                sample=None,
                retest_of=None,
            )
    return locked


@dataclass(frozen=True)
class ResultEntry:
    """What the analyst reports for one criterion."""

    value: str = ""
    outcome: str = ""
    unit: str = ""
    method: str = ""
    instrument: str = ""
    analyst: str = ""
    tested_at: dt.datetime | None = None


QC_VALUE_LIMIT = Decimal(10) ** 10  # QcResult.numeric_value: 14 digits, 4 of them decimals


def _parse_value(text: str, criterion: SpecCriterion) -> tuple[Decimal | None, str]:
    text = text.strip()
    if not text:
        return None, ""
    qualifier = text[0] if text[0] in "<>" else ""
    value = number(text[len(qualifier) :].strip(), criterion.attribute)
    if abs(value) >= QC_VALUE_LIMIT:
        raise DomainError(f"{criterion.attribute} of {value} is too large to record; check the value and its unit.")
    if criterion.unit == "%" and not Decimal(0) <= value <= Decimal(100):
        raise DomainError(f"{criterion.attribute} of {value} % is not possible: a percentage is 0 to 100.")
    if value < 0:
        raise DomainError(f"{criterion.attribute} cannot be negative.")
    return value, qualifier


def qc_result_record(
    *,
    batch: Batch,
    criterion: SpecCriterion,
    acting_user: Any,
    entry: ResultEntry,
    sample: QcSample | None = None,
    retest_of: QcResult | None = None,
) -> QcResult:
    """Enter a result; its flag is computed now and stored. An OOS result opens an investigation."""
    require_permission(acting_user, "manufacturing.enter_qcresult", action="enter QC results")
    value, qualifier = _parse_value(entry.value, criterion)
    outcome = entry.outcome.strip().lower()
    if criterion.comparator in QUALITATIVE and (value is not None or outcome not in QUALITATIVE[criterion.comparator]):
        raise DomainError(
            f"{criterion.attribute} is reported as {' or '.join(repr(o) for o in QUALITATIVE[criterion.comparator])}."
        )
    if criterion.comparator in NUMERIC and (value is None or outcome):
        raise DomainError(f"{criterion.attribute} is reported as a number in {criterion.unit or 'its unit'}.")
    if criterion.unit and criterion.comparator in NUMERIC and entry.unit.strip() != criterion.unit:
        raise DomainError(
            f"{criterion.attribute} must be reported in {criterion.unit}, not {entry.unit.strip() or 'no unit'}."
        )
    tested_at = entry.tested_at or timezone.now()
    if tested_at > timezone.now() + CLOCK_SKEW:
        raise DomainError("A test cannot be dated in the future.")
    if not entry.analyst.strip():
        raise DomainError("Name the analyst who performed the test.")
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).get(pk=batch.pk)
        if locked.status != BatchStatus.RELEASE_TESTING:
            raise DomainError(
                f"Batch {locked.lot_number} is {locked.get_status_display().lower()}; "
                "results are entered during release testing."
            )
        if criterion.specification_id != locked.specification_id:
            raise DomainError(
                f"{criterion.attribute} belongs to another specification than the one frozen on "
                f"batch {locked.lot_number}."
            )
        if retest_of is not None and (
            retest_of.criterion_id != criterion.pk or retest_of.flag not in (QcFlag.OOS, QcFlag.NOT_EVALUABLE)
        ):
            raise DomainError(
                "A retest must follow an out-of-specification or unevaluable result of the same criterion."
            )
        if retest_of is None and locked.qc_results.filter(criterion=criterion, status=ResultStatus.VALID).exists():
            raise DomainError(
                f"{criterion.attribute} already has a valid result. Enter a retest of it, or ask QA to invalidate it."
            )
        result = evaluate(criterion, value=value, qualifier=qualifier, outcome=outcome, unit=entry.unit.strip())
        return _save_result(
            locked,
            criterion,
            acting_user,
            result,
            numeric_value=value,
            qualifier=qualifier,
            qualitative_outcome=outcome,
            unit=entry.unit.strip(),
            method=entry.method.strip(),
            instrument=entry.instrument.strip(),
            analyst=entry.analyst.strip(),
            tested_at=tested_at,
            sample=sample,
            retest_of=retest_of,
        )


def _save_result(
    batch: Batch, criterion: SpecCriterion, acting_user: Any, result: Evaluation, **fields: Any
) -> QcResult:
    qc = QcResult(
        batch=batch,
        criterion=criterion,
        entered_by=acting_user,
        flag=result.flag,
        flag_explanation=result.explanation[:300],
        **fields,
    )
    if fields.get("retest_of") is not None:
        qc.investigation = fields["retest_of"].investigation
    save_audited(qc, acting_user=acting_user, reason=f"{criterion.attribute} result entered: {qc.get_flag_display()}")
    if result.flag in (QcFlag.OOS, QcFlag.NOT_EVALUABLE) and qc.investigation is None:
        qc.investigation = deviation_open(
            record=qc,
            source=DeviationSource.OOS,
            acting_user=acting_user,
            subject_code=batch.subject.code,
            description=f"Batch {batch.lot_number}: {criterion.attribute} {result.explanation}.",
        )
        save_audited(
            qc,
            acting_user=acting_user,
            reason=f"OOS investigation {qc.investigation.code} opened",
            update_fields=["investigation"],
        )
    return qc


def qc_result_invalidate(*, result: QcResult, acting_user: Any, signature: SignatureRequest) -> QcResult:
    """QA invalidates a result (e.g. a proven laboratory error); its flag and value stay on record."""
    require_permission(acting_user, "manufacturing.decide_release", action="invalidate QC results")
    signer = authenticate_signer(
        request=signature,
        record=result,
        acting_user=acting_user,
        allowed_meanings={"reviewed"},
        required_permission="manufacturing.decide_release",
    )
    with transaction.atomic():
        locked = QcResult.objects.select_for_update(of=("self",)).get(pk=result.pk)
        if locked.status != ResultStatus.VALID:
            raise DomainError("This result is already invalidated.")
        locked.status, locked.status_reason = ResultStatus.INVALIDATED, signature.reason.strip()
        save_audited(
            locked,
            acting_user=signer,
            reason=f"invalidated: {signature.reason.strip()}",
            update_fields=["status", "status_reason"],
        )
        signature_apply(record=locked, signer=signer, meaning="reviewed", reason=signature.reason)
    return locked


def qc_sample_take(*, batch: Batch, acting_user: Any, purpose: str, taken_at: dt.datetime | None = None) -> QcSample:
    require_permission(acting_user, "manufacturing.add_cultureevent", action="take QC samples")
    purpose = require_reason(purpose, what="the QC sample's purpose")
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).select_related("subject").get(pk=batch.pk)
        number_ = locked.qc_samples.count() + 1
        sample = QcSample(
            batch=locked,
            code=f"QC-{locked.lot_number}-{number_}",
            purpose=purpose,
            taken_at=taken_at or timezone.now(),
            taken_by=acting_user,
        )
        save_audited(sample, acting_user=acting_user, reason=f"QC sample taken for {purpose}")
        label_create(
            item=sample,
            kind=LabelKind.QC_SAMPLE,
            code=sample.code,
            subject_code=locked.subject.code,
            acting_user=acting_user,
        )
    return sample


# --- Deviations ----------------------------------------------------------------------------------------


def deviation_close(
    *,
    deviation: Deviation,
    acting_user: Any,
    signature: SignatureRequest,
    classification: str,
    impact_assessment: str,
    corrective_action: str,
) -> DeviationClosure:
    """QA classifies, assesses and closes a deviation with an e-signature."""
    require_permission(acting_user, "manufacturing.close_deviation", action="close deviations")
    impact_assessment = require_reason(impact_assessment, what="the impact assessment")
    corrective_action = require_reason(corrective_action, what="the corrective action")
    signer = authenticate_signer(
        request=signature,
        record=deviation,
        acting_user=acting_user,
        allowed_meanings={"reviewed", "approved"},
        required_permission="manufacturing.close_deviation",
    )
    with transaction.atomic():
        locked = Deviation.objects.select_for_update(of=("self",)).get(pk=deviation.pk)
        if locked.status != DeviationStatus.OPEN:
            raise DomainError(f"Deviation {locked.code} is already closed.")
        closure = DeviationClosure(
            deviation=locked,
            classification=classification,
            impact_assessment=impact_assessment,
            corrective_action=corrective_action,
            closed_by=signer,
        )
        save_audited(closure, acting_user=signer, reason=signature.reason)
        locked.status = DeviationStatus.CLOSED
        save_audited(
            locked,
            acting_user=signer,
            reason=f"closed ({classification}): {signature.reason}",
            update_fields=["status"],
        )
        signature_apply(record=closure, signer=signer, meaning=signature.meaning, reason=signature.reason)
    return closure


def deviations_for_batch(batch: Batch) -> list[Deviation]:
    """Every deviation raised on the batch or anything it is made of or tested by."""
    sources: list[tuple[type[models.Model], list[int]]] = [
        (Batch, [batch.pk]),
        (Flask, list(batch.flasks.values_list("pk", flat=True))),
        (QcResult, list(batch.qc_results.values_list("pk", flat=True))),
        (type(batch.aspirate), [batch.aspirate_id]),
    ]
    found: list[Deviation] = []
    for model, ids in sources:
        if ids:
            content_type = ContentType.objects.get_for_model(model)
            found.extend(Deviation.objects.filter(content_type=content_type, object_id__in=ids))
    return sorted(found, key=lambda d: d.opened_at)


# --- Environmental monitoring ----------------------------------------------------------------------------


def processing_session_open(
    *, acting_user: Any, room: str, cabinet: str, started_at: dt.datetime, operators: str, batches: Iterable[Batch]
) -> ProcessingSession:
    require_permission(acting_user, "manufacturing.add_cultureevent", action="record processing sessions")
    with transaction.atomic():
        session = ProcessingSession(
            room=room, cabinet=cabinet, started_at=started_at, operators=operators, recorded_by=acting_user
        )
        save_audited(session, acting_user=acting_user, reason="processing session recorded")
        for batch in batches:
            save_audited(
                SessionBatch(session=session, batch=batch),
                acting_user=acting_user,
                reason=f"batch {batch.lot_number} processed in the session",
            )
    return session


EM_COUNT_LIMIT = 2_147_483_647  # EmReading.value is a PositiveIntegerField


def em_reading_record(
    *, session: ProcessingSession, acting_user: Any, grade: str, kind: str, location: str, value: int
) -> EmReading:
    """Record one reading against the Annex 1 limit; an excursion opens a deviation on every batch of the session."""
    require_permission(acting_user, "manufacturing.add_cultureevent", action="record environmental monitoring")
    if grade not in EM_LIMITS or kind not in EM_LIMITS[grade]:
        raise DomainError("Choose the grade and the kind of reading from the lists.")
    if int(value) < 0:
        raise DomainError("A count cannot be negative.")
    if int(value) > EM_COUNT_LIMIT:
        raise DomainError(f"A count of {int(value):,} is more than a reading can record; check the reading.")
    limit = EM_LIMITS[grade][kind]
    excursion = limit is not None and int(value) > limit
    with transaction.atomic():
        locked = ProcessingSession.objects.select_for_update(of=("self",)).get(pk=session.pk)
        reading = EmReading(
            session=locked,
            grade=grade,
            kind=kind,
            location=location.strip() or "unspecified",
            value=int(value),
            limit=limit,
            excursion=excursion,
            recorded_by=acting_user,
        )
        save_audited(reading, acting_user=acting_user, reason="EM excursion" if excursion else "EM reading")
        if excursion:
            for batch in locked.batches.select_related("subject"):
                deviation_open(
                    record=batch,
                    source=DeviationSource.ENVIRONMENT,
                    acting_user=acting_user,
                    subject_code=batch.subject.code,
                    description=f"EM excursion in {locked}: {reading.get_kind_display()} at {reading.location}"
                    f" = {reading.value} (grade {grade} limit {limit}).",
                )
    return reading


# --- QA's decision ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionStatus:
    criterion: SpecCriterion
    results: list[QcResult]

    @property
    def valid(self) -> list[QcResult]:
        return [r for r in self.results if r.status == ResultStatus.VALID]

    @property
    def blocking(self) -> str:
        """Why this criterion stops release, or "" when it does not."""
        valid = self.valid
        if self.criterion.comparator == Comparator.DOSE:
            return ""
        if not valid:
            return f"{self.criterion.attribute}: no valid result"
        failed = [r for r in valid if r.flag in (QcFlag.OOS, QcFlag.NOT_EVALUABLE)]
        if failed:
            return f"{self.criterion.attribute}: {failed[0].get_flag_display().lower()} ({failed[0].display_value})"
        return ""


def criteria_status(batch: Batch) -> list[CriterionStatus]:
    if batch.specification is None:
        return []
    results: dict[int, list[QcResult]] = {}
    for result in batch.qc_results.select_related("entered_by", "investigation").order_by("entered_at", "id"):
        results.setdefault(result.criterion_id, []).append(result)
    return [CriterionStatus(c, results.get(c.pk, [])) for c in batch.specification.criteria.order_by("position")]


def manufacturing_actors(batch: Batch) -> set[int]:
    """Everyone who performed a manufacturing step on the batch (segregation of duties)."""
    actors: set[int | None] = {batch.started_by_id}
    actors |= set(Flask.objects.filter(batch=batch).values_list("events__recorded_by", flat=True))
    actors |= set(batch.qc_samples.values_list("taken_by", flat=True))
    harvest = getattr(batch, "harvest", None)
    if harvest is not None:
        actors.add(harvest.recorded_by_id)
    return {actor for actor in actors if actor is not None}


def release_blockers(batch: Batch, *, decision: str) -> list[str]:
    """Every reason the batch cannot be released now, in words; empty when it can."""
    reasons = []
    conditional = decision == BatchStatus.CONDITIONALLY_RELEASED
    for status in criteria_status(batch):
        blocking = status.blocking
        if blocking and conditional and status.criterion.attribute == "Sterility" and not status.valid:
            continue  # sterility may still be pending for a conditional release
        if blocking:
            reasons.append(blocking)
    if batch.specification_id is None:
        reasons.append("release testing has not started")
    open_deviations = [d.code for d in deviations_for_batch(batch) if d.status == DeviationStatus.OPEN]
    if open_deviations:
        reasons.append(f"open deviation(s): {', '.join(open_deviations)}")
    if conditional and batch.specification is not None and not batch.specification.allows_conditional_release:
        reasons.append("this study's specification does not allow a conditional release")
    return reasons


_DECISION_MEANING: dict[str, str] = {
    BatchStatus.RELEASED: "released",
    BatchStatus.CONDITIONALLY_RELEASED: "released",
    BatchStatus.REJECTED: "rejected",
}


def batch_release_decide(
    *, batch: Batch, acting_user: Any, decision: str, signature: SignatureRequest, justification: str = ""
) -> Batch:
    """QA releases, conditionally releases or rejects a batch with an e-signature.

    Refused, with every reason, while a criterion is missing or out of specification or a deviation is
    open, or when the signer took part in making the batch. A refusal changes nothing.
    """
    require_permission(acting_user, "manufacturing.decide_release", action="release or reject batches")
    if decision not in _DECISION_MEANING:
        raise DomainError("Choose release, conditional release or reject.")
    meaning = _DECISION_MEANING[decision]
    if signature.meaning != meaning:
        raise DomainError(
            f"A {BatchStatus(decision).label.lower()} decision is signed with the meaning “{meaning}”.",
            code="bad_meaning",
        )
    if decision == BatchStatus.CONDITIONALLY_RELEASED:
        justification = require_reason(justification, what="a conditional release")
    signer = authenticate_signer(
        request=signature,
        record=batch,
        acting_user=acting_user,
        allowed_meanings={meaning},
        required_permission="manufacturing.decide_release",
    )
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).select_related("specification").get(pk=batch.pk)
        if decision not in BATCH_TRANSITIONS[locked.status]:
            raise DomainError(
                f"Batch {locked.lot_number} is {locked.get_status_display().lower()}; it cannot be "
                f"{BatchStatus(decision).label.lower()} now.",
                code="bad_transition",
            )
        if signer.pk in manufacturing_actors(locked):
            raise DomainError(
                f"{signer.printed_name} took part in making batch {locked.lot_number} and may not "
                "release or reject it; another QA officer must sign.",
                code="segregation",
            )
        if decision != BatchStatus.REJECTED:
            reasons = release_blockers(locked, decision=decision)
            if reasons:
                raise DomainError(
                    "Release refused: " + "; ".join(reasons) + ".", code="release_blocked", reasons=reasons
                )
        locked.status, locked.decided_at, locked.needs_rereview = decision, timezone.now(), False
        why = signature.reason.strip() + (f" — justification: {justification}" if justification else "")
        save_audited(locked, acting_user=signer, reason=why, update_fields=["status", "decided_at", "needs_rereview"])
        signature_apply(record=locked, signer=signer, meaning=meaning, reason=why)
    return locked
