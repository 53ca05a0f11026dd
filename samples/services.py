"""State changes of studies, protocols, subjects, aspirates and follow-up.

Each function takes the acting user, checks the role and the inputs, and writes inside one
transaction with the history user and reason set before the save.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.errors import DomainError
from lims.models import ContainerCondition, DeviationSource, Label, LabelKind
from lims.roles import require_permission
from lims.services import CLOCK_SKEW, custody_record, deviation_open, label_create, require_scanned
from lims.signatures import SignatureRequest, authenticate_signer, signature_apply
from lims.values import number
from samples.calculations import age_in_whole_years, das28_category, das28_esr
from samples.models import (
    ASPIRATE_TRANSITIONS,
    PROTOCOL_TRANSITIONS,
    SUBJECT_TRANSITIONS,
    Analyte,
    Aspirate,
    AspirateStatus,
    AssayResult,
    CriterionKind,
    DiseaseActivity,
    EligibilityAnswer,
    EligibilityCriterion,
    FollowUpSample,
    FollowUpVisit,
    ProtocolStatus,
    ProtocolVersion,
    Sex,
    Study,
    Subject,
    SubjectStatus,
)


def _require_transition(transitions: dict[str, set[str]], current: str, target: str, refusal: str) -> None:
    if target not in transitions.get(current, set()):
        raise DomainError(refusal, code="bad_transition")


def _not_in_future(moment: dt.datetime, what: str) -> None:
    if moment > timezone.now() + CLOCK_SKEW:
        raise DomainError(f"{what} cannot be in the future.")


# --- Studies and protocols -----------------------------------------------------------------


def protocol_in_force(study: Study) -> ProtocolVersion:
    protocol = study.protocol_versions.filter(status=ProtocolStatus.APPROVED).first()
    if protocol is None:
        raise DomainError(f"Study {study.code} has no approved protocol yet; the lab manager must approve one.")
    return protocol


PROTOCOL_PARAMETERS = {
    f.name
    for f in ProtocolVersion._meta.concrete_fields
    if f.name not in {"id", "study", "version", "status", "change_summary", "created_by", "created_at", "approved_at"}
}


def _copy_children(source: ProtocolVersion, target: ProtocolVersion, acting_user: Any, reason: str) -> None:
    for model, related in ((EligibilityCriterion, "criteria"), (FollowUpVisit, "visits"), (Analyte, "analytes")):
        for child in getattr(source, related).all():
            values = {
                f.name: getattr(child, f.name) for f in model._meta.concrete_fields if f.name not in {"id", "protocol"}
            }
            copy = model(protocol=target, **values)
            save_audited(copy, acting_user=acting_user, reason=reason)


def protocol_revise(
    *, study: Study, acting_user: Any, changes: dict[str, object], change_summary: str
) -> ProtocolVersion:
    """Draft the next protocol version: the one in force, with the changed parameters."""
    require_permission(acting_user, "samples.add_protocolversion", action="draft a protocol version")
    change_summary = require_reason(change_summary, what="a protocol change")
    unknown = set(changes) - PROTOCOL_PARAMETERS
    if unknown:
        raise DomainError(f"Unknown protocol parameters: {', '.join(sorted(unknown))}.")
    if not changes:
        raise DomainError("Nothing changes: a new protocol version needs at least one changed parameter.")
    with transaction.atomic():
        locked = Study.objects.select_for_update(of=("self",)).get(pk=study.pk)
        if locked.protocol_versions.filter(status=ProtocolStatus.DRAFT).exists():
            raise DomainError("A draft protocol version already waits for approval; approve or revise that one.")
        current = protocol_in_force(locked)
        values = {name: getattr(current, name) for name in PROTOCOL_PARAMETERS}
        values.update(changes)
        draft = ProtocolVersion(
            study=locked,
            version=(locked.protocol_versions.aggregate(v=Max("version"))["v"] or 0) + 1,
            change_summary=change_summary,
            created_by=acting_user,
            **values,
        )
        _validate_protocol(draft)
        save_audited(draft, acting_user=acting_user, reason=change_summary)
        _copy_children(current, draft, acting_user, change_summary)
    return draft


def _validate_protocol(protocol: ProtocolVersion) -> None:
    if protocol.feed_interval_hours <= 0 or protocol.observation_interval_hours <= 0:
        raise DomainError("Feed and observation intervals must be longer than zero hours.")
    if protocol.dose_min_million_per_kg <= 0 or protocol.dose_min_million_per_kg > protocol.dose_max_million_per_kg:
        raise DomainError("The dose window must be above zero, with the minimum not above the maximum.")
    if protocol.age_min_years > protocol.age_max_years:
        raise DomainError("The minimum age must not be above the maximum age.")
    if protocol.transport_temp_min_c > protocol.transport_temp_max_c or protocol.max_hours_collection_to_receipt <= 0:
        raise DomainError("Transport limits must have a minimum temperature below the maximum and a time above zero.")
    if protocol.product_storage_min_c > protocol.product_storage_max_c or protocol.product_transport_max_hours <= 0:
        raise DomainError(
            "Product storage limits must have a minimum temperature below the maximum and a transport time above zero."
        )
    if protocol.product_shelf_life_hours <= 0:
        raise DomainError("The product shelf life must be longer than zero hours.")
    if not 0 < protocol.passage_confluence_percent <= 100:
        raise DomainError("Passage confluence must be above 0 and at most 100 %.")
    if not (
        0 < protocol.p0_density_min_per_cm2 <= protocol.p0_density_max_per_cm2
        and 0 < protocol.passage_density_min_per_cm2 <= protocol.passage_density_max_per_cm2
    ):
        raise DomainError(
            "The P0 and passage seeding density ranges must each have a lowest value above zero and not above "
            "the highest."
        )
    if not 0 < protocol.weight_min_kg < protocol.weight_max_kg:
        raise DomainError("The plausible body weight must have a minimum above zero and below the maximum.")
    if not protocol.sexes or not protocol.sexes <= set(Sex.values):
        raise DomainError("Eligible sexes must be F, M or both.")


def protocol_approve(*, protocol: ProtocolVersion, acting_user: Any, signature: SignatureRequest) -> ProtocolVersion:
    """The lab manager signs a draft into force; the version it replaces is superseded, never edited."""
    require_permission(acting_user, "samples.approve_protocolversion", action="approve protocol versions")
    signer = authenticate_signer(
        request=signature,
        record=protocol,
        acting_user=acting_user,
        allowed_meanings={"approved"},
        required_permission="samples.approve_protocolversion",
    )
    with transaction.atomic():
        Study.objects.select_for_update(of=("self",)).get(pk=protocol.study_id)
        draft = ProtocolVersion.objects.select_for_update(of=("self",)).get(pk=protocol.pk)
        _require_transition(
            PROTOCOL_TRANSITIONS,
            draft.status,
            ProtocolStatus.APPROVED,
            f"Protocol v{draft.version} is {draft.get_status_display().lower()} and cannot be approved.",
        )
        for previous in ProtocolVersion.objects.select_for_update(of=("self",)).filter(
            study_id=draft.study_id, status=ProtocolStatus.APPROVED
        ):
            previous.status = ProtocolStatus.SUPERSEDED
            save_audited(
                previous, acting_user=signer, reason=f"superseded by v{draft.version}", update_fields=["status"]
            )
        draft.status = ProtocolStatus.APPROVED
        draft.approved_at = timezone.now()
        save_audited(draft, acting_user=signer, reason=signature.reason, update_fields=["status", "approved_at"])
        signature_apply(record=draft, signer=signer, meaning="approved", reason=signature.reason)
    return draft


# --- Subjects and eligibility ----------------------------------------------------------------


def subject_register(
    *,
    study: Study,
    acting_user: Any,
    sex: str,
    date_of_birth: dt.date,
    screening_date: dt.date,
    consent_date: dt.date,
    reason: str = "subject registered at screening",
) -> Subject:
    """Give a screened person a pseudonymous code and a wristband label; no name is ever stored."""
    require_permission(acting_user, "samples.add_subject", action="register subjects")
    reason = require_reason(reason, what="registering a subject")
    today = timezone.localdate()
    if sex not in Sex.values:
        raise DomainError("Choose the subject's sex from the list.")
    if date_of_birth >= screening_date:
        raise DomainError("The date of birth must be before the screening date.")
    if screening_date > today or consent_date > today:
        raise DomainError("Screening and consent dates cannot be in the future.")
    if consent_date > screening_date:
        raise DomainError("Consent must be given on or before the screening date.")
    with transaction.atomic():
        locked_study = Study.objects.select_for_update(of=("self",)).get(pk=study.pk)
        protocol = protocol_in_force(locked_study)
        sequence = (locked_study.subjects.aggregate(last=Max("sequence"))["last"] or 0) + 1
        subject = Subject(
            study=locked_study,
            protocol=protocol,
            sequence=sequence,
            code=f"{locked_study.subject_prefix}-{sequence:03d}",
            sex=sex,
            date_of_birth=date_of_birth,
            screening_date=screening_date,
            consent_date=consent_date,
            registered_by=acting_user,
        )
        save_audited(subject, acting_user=acting_user, reason=reason)
        label_create(
            item=subject,
            kind=LabelKind.WRISTBAND,
            code=f"WB-{subject.code}",
            subject_code=subject.code,
            acting_user=acting_user,
        )
    return subject


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reasons: list[str]
    age_years: int
    unanswered: int


def eligibility_evaluate(subject: Subject, answers: dict[int, bool] | None = None) -> Eligibility:
    """Sex and age are evaluated from the protocol; the checklist from the investigator's answers."""
    protocol = subject.protocol
    if answers is None:
        answers = {a.criterion_id: a.answer for a in subject.eligibility_answers.all()}
    reasons: list[str] = []
    age = age_in_whole_years(subject.date_of_birth, subject.screening_date)
    if subject.sex not in protocol.sexes:
        allowed = " or ".join(Sex(s).label.lower() for s in sorted(protocol.sexes))
        reasons.append(f"Sex is {subject.get_sex_display().lower()}; the protocol enrols {allowed} subjects only.")
    if not protocol.age_min_years <= age <= protocol.age_max_years:
        reasons.append(
            f"Age at screening is {age} years; the protocol requires "
            f"{protocol.age_min_years} to {protocol.age_max_years} years."
        )
    unanswered = 0
    for criterion in protocol.criteria.all():
        answer = answers.get(criterion.pk)
        if answer is None:
            unanswered += 1
        elif criterion.kind == CriterionKind.INCLUSION and not answer:
            reasons.append(f"Inclusion criterion not met: {criterion.text}.")
        elif criterion.kind == CriterionKind.EXCLUSION and answer:
            reasons.append(f"Exclusion criterion applies: {criterion.text}.")
    return Eligibility(eligible=not reasons and unanswered == 0, reasons=reasons, age_years=age, unanswered=unanswered)


def subject_answer_eligibility(*, subject: Subject, acting_user: Any, answers: dict[int, bool]) -> Eligibility:
    """Record the investigator's checklist answers (changeable, with history, until eligibility is signed)."""
    require_permission(acting_user, "samples.confirm_eligibility", action="answer the eligibility checklist")
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).select_related("protocol").get(pk=subject.pk)
        if locked.status != SubjectStatus.SCREENING:
            raise DomainError(
                f"Subject {locked.code} is {locked.get_status_display().lower()}; the checklist can no longer change."
            )
        criteria = {c.pk: c for c in locked.protocol.criteria.all()}
        foreign = set(answers) - set(criteria)
        if foreign:
            raise DomainError("Some answers are for criteria of another protocol; reload the page and answer again.")
        existing = {a.criterion_id: a for a in locked.eligibility_answers.all()}
        for criterion_id, value in answers.items():
            answer = existing.get(criterion_id)
            if answer is None:
                answer = EligibilityAnswer(
                    subject=locked, criterion_id=criterion_id, answer=value, answered_by=acting_user
                )
            elif answer.answer == value:
                continue
            else:
                answer.answer, answer.answered_by, answer.answered_at = value, acting_user, timezone.now()
            save_audited(answer, acting_user=acting_user, reason="eligibility checklist answered")
        return eligibility_evaluate(locked)


def subject_confirm_eligibility(*, subject: Subject, acting_user: Any, signature: SignatureRequest) -> Subject:
    """The investigator signs "eligibility confirmed"; an ineligible subject cannot be enrolled."""
    require_permission(acting_user, "samples.confirm_eligibility", action="confirm eligibility")
    signer = authenticate_signer(
        request=signature,
        record=subject,
        acting_user=acting_user,
        allowed_meanings={"eligibility_confirmed"},
        required_permission="samples.confirm_eligibility",
    )
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).select_related("protocol").get(pk=subject.pk)
        _require_transition(
            SUBJECT_TRANSITIONS,
            locked.status,
            SubjectStatus.ENROLLED,
            f"Subject {locked.code} is {locked.get_status_display().lower()} and cannot be enrolled.",
        )
        result = eligibility_evaluate(locked)
        if result.unanswered:
            raise DomainError(f"{result.unanswered} checklist item(s) are not answered yet.", code="ineligible")
        if not result.eligible:
            raise DomainError(
                "Subject is not eligible: " + " ".join(result.reasons), code="ineligible", reasons=result.reasons
            )
        locked.status = SubjectStatus.ENROLLED
        save_audited(locked, acting_user=signer, reason=signature.reason, update_fields=["status"])
        signature_apply(record=locked, signer=signer, meaning="eligibility_confirmed", reason=signature.reason)
    return locked


def subject_screen_fail(*, subject: Subject, acting_user: Any, reason: str) -> Subject:
    """Close screening for a subject who is not eligible, with the reason."""
    return _subject_close(
        subject=subject,
        acting_user=acting_user,
        reason=reason,
        target=SubjectStatus.INELIGIBLE,
        permission="samples.confirm_eligibility",
        action="record a screen failure",
    )


def subject_withdraw(*, subject: Subject, acting_user: Any, reason: str) -> Subject:
    """A withdrawn subject stops everything downstream: no aspirate, no sample, no dose."""
    return _subject_close(
        subject=subject,
        acting_user=acting_user,
        reason=reason,
        target=SubjectStatus.WITHDRAWN,
        permission="samples.withdraw_subject",
        action="withdraw subjects",
    )


def _subject_close(
    *, subject: Subject, acting_user: Any, reason: str, target: str, permission: str, action: str
) -> Subject:
    require_permission(acting_user, permission, action=action)
    reason = require_reason(reason, what="this change of status")
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).get(pk=subject.pk)
        _require_transition(
            SUBJECT_TRANSITIONS,
            locked.status,
            target,
            f"Subject {locked.code} is {locked.get_status_display().lower()}; "
            f"it cannot become {SubjectStatus(target).label.lower()}.",
        )
        locked.status, locked.status_reason = target, reason
        save_audited(locked, acting_user=acting_user, reason=reason, update_fields=["status", "status_reason"])
    return locked


def _require_active_subject(subject: Subject, doing: str) -> None:
    if subject.status == SubjectStatus.WITHDRAWN:
        raise DomainError(f"Subject {subject.code} was withdrawn ({subject.status_reason}); {doing} is stopped.")
    if subject.status != SubjectStatus.ENROLLED:
        raise DomainError(
            f"Subject {subject.code} is {subject.get_status_display().lower()}: "
            f"eligibility must be confirmed and signed before {doing}."
        )


# --- Aspirates -------------------------------------------------------------------------------


def aspirate_collect(
    *,
    subject: Subject,
    acting_user: Any,
    collected_at: dt.datetime,
    volume_ml: object,
    site: str = "posterior iliac crest",
    anticoagulant: str = "heparin",
) -> Aspirate:
    """Register a bone marrow aspirate and label its tube with the subject's chain-of-identity code."""
    require_permission(acting_user, "samples.add_aspirate", action="register aspirates")
    volume = number(volume_ml, "The volume")
    if not Decimal("0.1") <= volume <= Decimal("500"):
        raise DomainError(f"A volume of {volume} mL is not plausible for a bone marrow aspirate (0.1–500 mL).")
    _not_in_future(collected_at, "The collection time")
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).get(pk=subject.pk)
        _require_active_subject(locked, "aspirate collection")
        if timezone.localtime(collected_at).date() < locked.consent_date:
            raise DomainError("The aspirate cannot be collected before the subject's consent date.")
        sequence = locked.aspirates.count() + 1
        aspirate = Aspirate(
            subject=locked,
            protocol=locked.protocol,
            code=f"AS-{locked.code}-{sequence}",
            collected_at=collected_at,
            collected_by=acting_user,
            site=site.strip() or "posterior iliac crest",
            volume_ml=volume,
            anticoagulant=anticoagulant.strip() or "heparin",
        )
        save_audited(aspirate, acting_user=acting_user, reason="aspirate collected")
        label_create(
            item=aspirate,
            kind=LabelKind.ASPIRATE,
            code=aspirate.code,
            subject_code=locked.code,
            acting_user=acting_user,
        )
    return aspirate


def _aspirate_label(aspirate: Aspirate) -> Label:
    return Label.objects.get(code=aspirate.code)


def aspirate_dispatch(
    *,
    aspirate: Aspirate,
    acting_user: Any,
    courier: str,
    temperature_c: object,
    dispatched_at: dt.datetime,
    location: str = "Clinic",
) -> Aspirate:
    """Hand the tube over from the clinic for transport to the cleanroom."""
    require_permission(acting_user, "samples.add_aspirate", action="dispatch aspirates")
    with transaction.atomic():
        locked = Aspirate.objects.select_for_update(of=("self",)).select_related("subject").get(pk=aspirate.pk)
        _require_active_subject(locked.subject, "transport")
        _require_transition(
            ASPIRATE_TRANSITIONS,
            locked.status,
            AspirateStatus.IN_TRANSIT,
            f"Aspirate {locked.code} is {locked.get_status_display().lower()} and cannot be dispatched.",
        )
        if dispatched_at < locked.collected_at:
            raise DomainError("The tube cannot be dispatched before it was collected.")
        custody_record(
            label=_aspirate_label(locked),
            acting_user=acting_user,
            handed_over_by=acting_user.printed_name,
            received_by=courier,
            location=location,
            occurred_at=dispatched_at,
            temperature_c=temperature_c,
            container_condition=ContainerCondition.INTACT,
        )
        locked.status, locked.dispatched_at = AspirateStatus.IN_TRANSIT, dispatched_at
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"dispatched to the cleanroom with {courier}",
            update_fields=["status", "dispatched_at"],
        )
    return locked


class ReceiptDecision(models.TextChoices):
    ACCEPT = "accept", "Accept"
    ACCEPT_WITH_DEVIATION = "accept_with_deviation", "Accept with a deviation for QA"
    REJECT = "reject", "Reject"


def receipt_findings(
    aspirate: Aspirate, *, received_at: dt.datetime, temperature: Decimal, container_intact: bool
) -> list[str]:
    """What is outside the protocol's transport limits, in words with the numbers."""
    protocol = aspirate.protocol
    findings = []
    hours = Decimal((received_at - aspirate.collected_at).total_seconds()) / 3600
    if hours > protocol.max_hours_collection_to_receipt:
        findings.append(
            f"{hours:.1f} h from collection to receipt (limit {protocol.max_hours_collection_to_receipt} h)"
        )
    if not protocol.transport_temp_min_c <= temperature <= protocol.transport_temp_max_c:
        findings.append(
            f"received at {temperature} °C (allowed {protocol.transport_temp_min_c}–{protocol.transport_temp_max_c} °C)"
        )
    if not container_intact:
        findings.append("container not intact")
    return findings


def aspirate_receive(
    *,
    aspirate: Aspirate,
    acting_user: Any,
    scanned_payload: str,
    received_at: dt.datetime,
    temperature_c: object,
    container_intact: bool,
    courier: str,
    decision: str = ReceiptDecision.ACCEPT,
    reason: str = "",
) -> Aspirate:
    """Receive the tube in the cleanroom by scanning it; outside the limits it is never silently accepted."""
    require_permission(acting_user, "samples.receive_aspirate", action="receive aspirates")
    require_scanned(payload=scanned_payload, expected_code=aspirate.code, acting_user=acting_user)
    temperature = number(temperature_c, "The temperature")
    _not_in_future(received_at, "The receipt time")
    if decision not in ReceiptDecision.values:
        raise DomainError("Choose accept, accept with a deviation, or reject.")
    with transaction.atomic():
        locked = (
            Aspirate.objects.select_for_update(of=("self",)).select_related("subject", "protocol").get(pk=aspirate.pk)
        )
        _require_active_subject(locked.subject, "receipt")
        if received_at < locked.collected_at:
            raise DomainError("The receipt time is before the collection time; check both.")
        findings = receipt_findings(
            locked, received_at=received_at, temperature=temperature, container_intact=container_intact
        )
        target, why = _receipt_outcome(findings, decision, reason)
        _require_transition(
            ASPIRATE_TRANSITIONS,
            locked.status,
            target,
            f"Aspirate {locked.code} is {locked.get_status_display().lower()} and cannot be received.",
        )
        custody_record(
            label=_aspirate_label(locked),
            acting_user=acting_user,
            handed_over_by=courier,
            received_by=acting_user.printed_name,
            location="Cleanroom reception",
            occurred_at=received_at,
            temperature_c=temperature,
            container_condition=ContainerCondition.INTACT if container_intact else ContainerCondition.DAMAGED,
            note="" if container_intact else (reason or "container not intact"),
        )
        locked.status, locked.received_at, locked.received_by = target, received_at, acting_user
        locked.receipt_temperature_c, locked.container_intact = temperature, container_intact
        locked.hours_in_transit = (Decimal((received_at - locked.collected_at).total_seconds()) / 3600).quantize(
            Decimal("0.01")
        )
        locked.receipt_findings, locked.receipt_reason = "; ".join(findings), reason.strip()
        save_audited(locked, acting_user=acting_user, reason=why)
        if target == AspirateStatus.ACCEPTED_WITH_DEVIATION:
            deviation_open(
                record=locked,
                source=DeviationSource.TRANSPORT,
                acting_user=acting_user,
                subject_code=locked.subject.code,
                description=f"Aspirate {locked.code} accepted outside transport limits: "
                f"{'; '.join(findings)}. Reason: {reason.strip()}",
            )
    return locked


def _receipt_outcome(findings: list[str], decision: str, reason: str) -> tuple[str, str]:
    if decision == ReceiptDecision.REJECT:
        return AspirateStatus.REJECTED, "rejected at receipt: " + require_reason(reason, what="rejecting an aspirate")
    if not findings:
        if decision != ReceiptDecision.ACCEPT:
            raise DomainError("The receipt is within the transport limits; accept it without a deviation.")
        return AspirateStatus.ACCEPTED, "received within transport limits"
    if decision == ReceiptDecision.ACCEPT:
        raise DomainError(
            "Outside the transport limits: " + "; ".join(findings) + ". Accept it with a deviation for QA, or "
            "reject it, and give the reason.",
            code="outside_limits",
            reasons=findings,
        )
    reason = require_reason(reason, what="accepting an aspirate outside the transport limits")
    return AspirateStatus.ACCEPTED_WITH_DEVIATION, "accepted with a deviation: " + reason


# --- Follow-up ------------------------------------------------------------------------------


def follow_up_sample_collect(
    *, subject: Subject, visit: FollowUpVisit, acting_user: Any, collected_at: dt.datetime
) -> FollowUpSample:
    """Register the blood sample of a protocol visit and label its tube."""
    require_permission(acting_user, "samples.add_followupsample", action="register follow-up samples")
    _not_in_future(collected_at, "The collection time")
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).get(pk=subject.pk)
        _require_active_subject(locked, "follow-up sampling")
        if visit.protocol_id != locked.protocol_id:
            raise DomainError(f"{visit.name} belongs to another protocol version than {locked.code}'s.")
        if locked.follow_up_samples.filter(visit=visit).exists():
            raise DomainError(f"{locked.code} already has a {visit.name} sample.")
        sample = FollowUpSample(
            subject=locked,
            visit=visit,
            code=f"BL-{locked.code}-M{visit.month}",
            collected_at=collected_at,
            collected_by=acting_user,
        )
        save_audited(sample, acting_user=acting_user, reason=f"{visit.name} sample collected")
        label_create(
            item=sample, kind=LabelKind.BLOOD, code=sample.code, subject_code=locked.code, acting_user=acting_user
        )
    return sample


ASSAY_VALUE_LIMIT = Decimal(10) ** 8  # AssayResult.value: 12 digits, 4 of them decimals
ESR_MAX_MM_H = Decimal(200)  # the Westergren tube is 200 mm long


def assay_result_record(
    *, sample: FollowUpSample, analyte: Analyte, value: object, acting_user: Any, reason: str = ""
) -> AssayResult:
    """Enter a result; a second entry for the same analyte is a correction and needs a reason."""
    require_permission(acting_user, "samples.add_assayresult", action="enter assay results")
    measured = number(value, f"{analyte.name}")
    if abs(measured) >= ASSAY_VALUE_LIMIT:
        # An analyte without an upper bound (a cytokine in pg/mL) must still fit its column, or PostgreSQL refuses it.
        raise DomainError(
            f"{analyte.name} of {measured} {analyte.unit} is too large to record; check the value and its unit."
        )
    if (analyte.min_value is not None and measured < analyte.min_value) or (
        analyte.max_value is not None and measured > analyte.max_value
    ):
        low = "" if analyte.min_value is None else f"{analyte.min_value.normalize():f}"
        high = "" if analyte.max_value is None else f"{analyte.max_value.normalize():f}"
        raise DomainError(
            f"{analyte.name} of {measured} {analyte.unit} is outside its possible range ({low}–{high} {analyte.unit})."
        )
    with transaction.atomic():
        locked = FollowUpSample.objects.select_for_update(of=("self",)).select_related("subject").get(pk=sample.pk)
        if analyte.protocol_id != locked.subject.protocol_id:
            raise DomainError(f"{analyte.name} is not an analyte of {locked.subject.code}'s protocol version.")
        result = locked.results.filter(analyte=analyte).first()
        if result is None:
            result = AssayResult(sample=locked, analyte=analyte, value=measured, entered_by=acting_user)
            save_audited(result, acting_user=acting_user, reason=f"{analyte.name} result entered")
        elif result.value != measured:
            why = require_reason(reason, what=f"correcting the {analyte.name} result")
            result.value, result.entered_by, result.entered_at = measured, acting_user, timezone.now()
            save_audited(result, acting_user=acting_user, reason=f"corrected: {why}")
    return result


def disease_activity_record(
    *,
    subject: Subject,
    visit: FollowUpVisit,
    acting_user: Any,
    assessed_on: dt.date,
    tender: int,
    swollen: int,
    esr_mm_h: object,
    patient_vas_mm: int,
    reason: str = "",
) -> DiseaseActivity:
    """Record joint counts, ESR and the patient's VAS; DAS28-ESR and its category are stored with them."""
    require_permission(acting_user, "samples.add_diseaseactivity", action="record disease activity")
    esr = number(esr_mm_h, "ESR")
    if esr > ESR_MAX_MM_H:
        raise DomainError(f"An ESR of {esr} mm/h is not possible: the Westergren tube reads at most 200 mm/h.")
    try:
        score = das28_esr(tender=tender, swollen=swollen, esr_mm_h=esr, patient_vas_mm=patient_vas_mm)
    except ValueError as exc:
        raise DomainError(f"Cannot compute DAS28-ESR: {exc}.") from exc
    if assessed_on > timezone.localdate():
        raise DomainError("The assessment date cannot be in the future.")
    with transaction.atomic():
        locked = Subject.objects.select_for_update(of=("self",)).get(pk=subject.pk)
        _require_active_subject(locked, "recording disease activity")
        if visit.protocol_id != locked.protocol_id:
            raise DomainError(f"{visit.name} belongs to another protocol version than {locked.code}'s.")
        values = {
            "assessed_on": assessed_on,
            "tender_joints_28": tender,
            "swollen_joints_28": swollen,
            "esr_mm_h": esr,
            "patient_global_vas_mm": patient_vas_mm,
            "das28_esr": score,
            "category": das28_category(score),
            "recorded_by": acting_user,
        }
        record = locked.disease_activity.filter(visit=visit).first()
        if record is None:
            record = DiseaseActivity(subject=locked, visit=visit, **values)
            save_audited(record, acting_user=acting_user, reason=f"{visit.name} disease activity recorded")
        else:
            why = require_reason(reason, what=f"correcting the {visit.name} disease activity")
            for name, value in values.items():
                setattr(record, name, value)
            save_audited(record, acting_user=acting_user, reason=f"corrected: {why}")
    return record


# --- Creating a study from its reference protocol -------------------------------------------

_AUTOMATIC_CRITERIA = ("age",)  # evaluated from the date of birth, not asked


def protocol_parameters_from_reference(data: dict[str, Any]) -> dict[str, object]:
    """Map the reference JSON of a study's defaults onto protocol parameters."""
    culture, dose, aspirate = data["culture"], data["dose"], data["aspirate"]
    million = Decimal(1_000_000)
    return {
        "eligible_sexes": ",".join(data["eligibility"]["sex"]),
        "age_min_years": data["eligibility"]["age_years"]["min"],
        "age_max_years": data["eligibility"]["age_years"]["max"],
        "dose_min_million_per_kg": Decimal(str(dose["cells_per_kg"]["min"])) / million,
        "dose_max_million_per_kg": Decimal(str(dose["cells_per_kg"]["max"])) / million,
        "feed_interval_hours": Decimal(str(culture["feed_interval_days"])) * 24,
        "passage_confluence_percent": culture["passage_confluence_percent"]["min"],
        "passage_limit": culture["passage_limit"],
        "target_culture_days": culture["target_culture_days"],
        "culture_days_tolerance": culture["culture_days_tolerance"],
        "p0_density_min_per_cm2": int(culture["p0_seeding_density_cells_per_cm2"]["min"]),
        "p0_density_max_per_cm2": int(culture["p0_seeding_density_cells_per_cm2"]["max"]),
        "passage_density_min_per_cm2": int(culture["subculture_seeding_density_cells_per_cm2"]["min"]),
        "passage_density_max_per_cm2": int(culture["subculture_seeding_density_cells_per_cm2"]["max"]),
        "max_hours_collection_to_receipt": Decimal(str(aspirate["max_hours_collection_to_receipt"])),
        "transport_temp_min_c": Decimal(str(aspirate["transport_temperature_c"]["min"])),
        "transport_temp_max_c": Decimal(str(aspirate["transport_temperature_c"]["max"])),
        "product_shelf_life_hours": Decimal(str(data["product"]["shelf_life_hours_from_formulation"])),
        "product_storage_min_c": Decimal(str(data["product"]["storage_temperature_c"]["min"])),
        "product_storage_max_c": Decimal(str(data["product"]["storage_temperature_c"]["max"])),
        "product_transport_max_hours": Decimal(str(data["product"]["transport_max_hours"])),
        "weight_max_age_days": dose["weight_max_age_days"],
        "weight_min_kg": Decimal(str(dose["weight_kg_plausible"]["min"])),
        "weight_max_kg": Decimal(str(dose["weight_kg_plausible"]["max"])),
        "syringe_resolution_ml": Decimal(str(dose["syringe_resolution_ml"])),
        "endotoxin_k_eu_per_kg": Decimal(str(dose["endotoxin_K_eu_per_kg"])),
    }


def study_create(*, acting_user: Any, data: dict[str, Any], reason: str) -> ProtocolVersion:
    """Create a study and its first protocol version (a draft, to be approved with a signature)."""
    require_permission(acting_user, "samples.add_study", action="create studies")
    reason = require_reason(reason, what="creating a study")
    info = data["study"]
    with transaction.atomic():
        if Study.objects.filter(models.Q(code=info["code"]) | models.Q(registry_id=info["registry_id"])).exists():
            raise DomainError(f"A study with code {info['code']} or registry id {info['registry_id']} exists.")
        study = Study(
            code=info["code"],
            registry_id=info["registry_id"],
            title=info["title"],
            phase=info["phase"],
            sponsor=info["sponsor"],
            planned_enrolment=info["planned_enrolment"],
        )
        save_audited(study, acting_user=acting_user, reason=reason)
        protocol = ProtocolVersion(
            study=study,
            version=1,
            change_summary="first version",
            created_by=acting_user,
            **protocol_parameters_from_reference(data),
        )
        _validate_protocol(protocol)
        save_audited(protocol, acting_user=acting_user, reason=reason)
        children: list[models.Model] = []
        position = 0
        for kind, items in (
            (CriterionKind.INCLUSION, data["eligibility"]["inclusion"]),
            (CriterionKind.EXCLUSION, data["eligibility"]["exclusion"]),
        ):
            for text in items:
                if text.lower().startswith(_AUTOMATIC_CRITERIA):
                    continue
                position += 1
                children.append(EligibilityCriterion(protocol=protocol, kind=kind, text=text, position=position))
        if not data["eligibility"].get("healthy_volunteers", True):
            children.append(
                EligibilityCriterion(
                    protocol=protocol, kind=CriterionKind.EXCLUSION, text="Healthy volunteer", position=position + 1
                )
            )
        for visit in data["follow_up"]["visits"]:
            children.append(
                FollowUpVisit(
                    protocol=protocol,
                    name=visit["name"],
                    month=visit["month"],
                    window_days=visit["window_days"],
                    before_infusion=visit.get("before_infusion", False),
                    primary_endpoint=visit.get("primary_endpoint", False),
                )
            )
        for position, analyte in enumerate(data["follow_up"]["analytes"], start=1):
            low, high = analyte.get("range", [0, None])
            children.append(
                Analyte(
                    protocol=protocol,
                    name=analyte["name"],
                    definition=analyte.get("definition", ""),
                    unit=analyte["unit"],
                    min_value=low,
                    max_value=high,
                    primary=analyte.get("primary", False),
                    position=position,
                )
            )
        for child in children:
            save_audited(child, acting_user=acting_user, reason=reason)
    return protocol
