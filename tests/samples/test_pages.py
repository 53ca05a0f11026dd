"""The samples pages, step by step: the right role succeeds, others are refused, refusals write nothing."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, partial
from urllib.parse import urlencode

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lims.audit import history_models
from lims.labels import label_payload
from lims.models import CustodyEvent, Deviation, Signature
from lims.signatures import SignatureRequest
from samples.models import (
    Aspirate,
    AspirateStatus,
    AssayResult,
    CriterionKind,
    DiseaseActivity,
    EligibilityAnswer,
    FollowUpSample,
    ProtocolStatus,
    ProtocolVersion,
    Subject,
    SubjectStatus,
)
from samples.selectors import PARAMETER_GROUPS, TEXT_PARAMETERS
from samples.services import (
    PROTOCOL_PARAMETERS,
    aspirate_collect,
    assay_result_record,
    disease_activity_record,
    follow_up_sample_collect,
    protocol_approve,
    protocol_revise,
    study_create,
    subject_answer_eligibility,
    subject_register,
    subject_withdraw,
)
from tests.factories import REFERENCE, subject_dates
from tests.samples.helpers import aspirate_in_transit, enrolled_subject

# --- Arranging subjects, aspirates and samples through the services ---------------------------
# Enrolled subjects and tubes in transit come from tests/samples/helpers.py; what only these pages need is here.


def screened(study, clinician, **dates) -> Subject:
    """A subject registered at screening, checklist not yet answered."""
    return subject_register(study=study, acting_user=clinician, sex="F", **(dates or subject_dates()))


def answer_checklist(subject, clinician, *, eligible: bool = True) -> None:
    """Inclusion "yes" and exclusion "no" (or the first inclusion "no" when not eligible)."""
    criteria = list(subject.protocol.criteria.order_by("position", "pk"))
    answers = {c.pk: c.kind == CriterionKind.INCLUSION for c in criteria}
    if not eligible:
        first_inclusion = next(c for c in criteria if c.kind == CriterionKind.INCLUSION)
        answers[first_inclusion.pk] = False
    subject_answer_eligibility(subject=subject, acting_user=clinician, answers=answers)


def collected_aspirate(subject, clinician, *, hours_ago: float = 3) -> Aspirate:
    return aspirate_collect(
        subject=subject,
        acting_user=clinician,
        collected_at=timezone.now() - dt.timedelta(hours=hours_ago),
        volume_ml="20",
    )


def sample_at(subject, clinician, month: int, *, days_ago: int = 1) -> FollowUpSample:
    return follow_up_sample_collect(
        subject=subject,
        visit=subject.protocol.visits.get(month=month),
        acting_user=clinician,
        collected_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def local(moment: dt.datetime) -> str:
    """A time as a tablet's datetime-local input sends it."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def history_rows(*, with_evidence: bool = False) -> dict[str, int]:
    """Row counts of every history table: a step that wrote anything added at least one row.

    Scan attempts and refused signatures are evidence written on purpose even when a step is
    refused, so they are left out unless asked for.
    """
    evidence = {"HistoricalScanAttempt", "HistoricalSignatureFailure"}
    return {
        model._meta.label: model._default_manager.count()
        for model in history_models()
        if with_evidence or model.__name__ not in evidence
    }


def last_history(obj):
    return obj.history.order_by("-history_id").first()


def body(response) -> str:
    return response.content.decode()


# --- Studies and protocols -----------------------------------------------------------------


@pytest.mark.requirement("CFR11.50")
def test_the_study_page_shows_the_protocol_in_force_with_units_visits_analytes_and_signature(client, clinician, study):
    client.force_login(clinician)
    response = client.get(reverse("samples:study-detail", args=[study.code]))
    assert response.status_code == 200
    page = body(response)
    assert "NCT03333681" in page
    assert '<span class="status status-approved">Approved (in force)</span>' in page
    assert "1 ×10⁶ cells/kg" in page
    assert "2 ×10⁶ cells/kg" in page
    assert "15 °C" in page
    assert "25 °C" in page
    assert "24 h" in page
    assert "Month 6" in page
    assert "± 14 days" in page
    assert "primary endpoint" in page
    assert "Treg" in page
    assert "0–100 %" in page
    assert "Approved</strong> by Maria Manager" in page
    assert "T25, T75, T175" in page
    assert reverse("samples:study-endpoint", args=[study.code]) in page
    assert reverse("samples:subject-list") + f"?study={study.code}" in page


def test_the_study_list_links_each_study_with_its_protocol_in_force(client, operator, study):
    client.force_login(operator)
    page = body(client.get(reverse("samples:study-list")))
    assert study.get_absolute_url() in page
    assert "v1" in page


def test_every_protocol_parameter_is_on_the_study_page_and_every_number_on_the_revision_form():
    numeric = {
        name
        for name in PROTOCOL_PARAMETERS
        if isinstance(ProtocolVersion._meta.get_field(name), models.DecimalField | models.IntegerField)
    }
    assert {name for _, rows in PARAMETER_GROUPS for name, _, _ in rows} == numeric
    assert set(TEXT_PARAMETERS) == PROTOCOL_PARAMETERS - numeric


def _revision_form(study) -> dict[str, str]:
    current = study.protocol_versions.get(status=ProtocolStatus.APPROVED)
    data = {name: str(getattr(current, name)) for _, rows in PARAMETER_GROUPS for name, _, _ in rows}
    return {**data, "change_summary": "Feed every 4 days after the validation run"}


def test_the_lab_manager_drafts_a_revision_with_only_the_changed_parameter(client, lab_manager, study):
    client.force_login(lab_manager)
    form = _revision_form(study) | {"feed_interval_hours": "96"}
    response = client.get(reverse("samples:protocol-revise", args=[study.code]))
    assert 'value="84.0"' in body(response), "the form is pre-filled with the version in force"
    response = client.post(reverse("samples:protocol-revise", args=[study.code]), form)
    assert response.status_code == 302
    draft = study.protocol_versions.get(version=2)
    assert (draft.status, draft.feed_interval_hours, draft.passage_limit) == (ProtocolStatus.DRAFT, Decimal("96"), 4)
    assert draft.criteria.count() == study.protocol_versions.get(version=1).criteria.count()
    history = last_history(draft)
    assert (history.history_user, history.history_change_reason) == (lab_manager, form["change_summary"])


def test_a_revision_with_an_impossible_dose_window_is_refused_and_writes_nothing(client, lab_manager, study):
    client.force_login(lab_manager)
    before = history_rows()
    form = _revision_form(study) | {"dose_min_million_per_kg": "3"}
    response = client.post(reverse("samples:protocol-revise", args=[study.code]), form)
    assert response.status_code == 400
    assert "The dose window must be above zero, with the minimum not above the maximum." in body(response)
    assert ProtocolVersion.objects.count() == 1
    assert history_rows() == before


def _draft(study, lab_manager) -> ProtocolVersion:
    return protocol_revise(
        study=study, acting_user=lab_manager, changes={"passage_limit": 5}, change_summary="P5 allowed"
    )


@pytest.mark.requirement("ANNEX11.14")
def test_the_lab_manager_signs_a_draft_into_force_and_the_old_version_is_superseded(
    client, lab_manager, password, study
):
    draft = _draft(study, lab_manager)
    client.force_login(lab_manager)
    url = reverse("samples:protocol-approve", args=[draft.pk])
    page = body(client.get(url))
    assert '<td>Highest passage</td><td class="num old">4 passages</td><td class="num new">5 passages</td>' in page
    response = client.post(url, {"username": lab_manager.username, "password": password, "reason": "validated"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == ProtocolStatus.APPROVED
    assert study.protocol_versions.get(version=1).status == ProtocolStatus.SUPERSEDED
    signature = Signature.objects.filter(object_id=draft.pk, meaning="approved").get(reason="validated")
    assert signature.signer == lab_manager
    assert last_history(draft).history_user == lab_manager


def test_approving_a_version_already_in_force_is_refused_and_writes_nothing(client, lab_manager, password, study):
    in_force = study.protocol_versions.get()
    client.force_login(lab_manager)
    before = history_rows()
    response = client.post(
        reverse("samples:protocol-approve", args=[in_force.pk]),
        {"username": lab_manager.username, "password": password, "reason": "again"},
    )
    assert response.status_code == 400
    assert "Protocol v1 is approved (in force) and cannot be approved." in body(response)
    assert history_rows() == before


@pytest.mark.requirement("CFR11.200")
def test_a_wrong_password_signs_nothing(client, lab_manager, study):
    draft = _draft(study, lab_manager)
    client.force_login(lab_manager)
    signatures = Signature.objects.count()
    response = client.post(
        reverse("samples:protocol-approve", args=[draft.pk]),
        {"username": lab_manager.username, "password": "not-my-password", "reason": "validated"},
    )
    assert response.status_code == 400
    assert "Wrong username or password; nothing was signed." in body(response)
    draft.refresh_from_db()
    assert (draft.status, Signature.objects.count()) == (ProtocolStatus.DRAFT, signatures)


# --- Subjects and eligibility ----------------------------------------------------------------


def _registration(dates=None) -> dict[str, str]:
    dates = dates or subject_dates()
    return {"sex": "F", **{k: v.isoformat() for k, v in dates.items()}}


def test_the_clinician_registers_a_subject_with_a_pseudonymous_code(client, clinician, study):
    client.force_login(clinician)
    response = client.post(reverse("samples:subject-register", args=[study.code]), _registration())
    subject = Subject.objects.get()
    assert response.status_code == 302
    assert response["Location"] == subject.get_absolute_url()
    assert (subject.code, subject.status, subject.registered_by) == ("RAMSC-001", SubjectStatus.SCREENING, clinician)
    assert last_history(subject).history_user == clinician


def test_a_registration_with_consent_after_screening_is_refused_and_writes_nothing(client, clinician, study):
    client.force_login(clinician)
    dates = subject_dates()
    dates["consent_date"] = dates["screening_date"] + dt.timedelta(days=1)
    before = history_rows()
    response = client.post(reverse("samples:subject-register", args=[study.code]), _registration(dates))
    assert response.status_code == 400
    assert "Consent must be given on or before the screening date." in body(response)
    assert Subject.objects.count() == 0
    assert history_rows() == before


def test_the_subject_list_is_filtered_by_study(client, clinician, lab_manager, password, study):
    data = json.loads(REFERENCE.read_text())
    data["study"] |= {"code": "OA-MSC", "registry_id": "NCT00000001"}
    other = study_create(acting_user=lab_manager, data=data, reason="second study")
    protocol_approve(
        protocol=other,
        acting_user=lab_manager,
        signature=SignatureRequest(lab_manager.username, password, "approved", "go"),
    )
    ours, theirs = screened(study, clinician), screened(other.study, clinician)
    client.force_login(clinician)
    page = body(client.get(reverse("samples:subject-list") + "?study=RA-MSC"))
    assert ours.code in page
    assert theirs.code not in page
    page = body(client.get(reverse("samples:subject-list")))
    assert ours.code in page
    assert theirs.code in page


def _checklist_form(subject) -> dict[str, str]:
    """Every inclusion criterion "yes", every exclusion criterion "no"."""
    return {
        f"criterion_{c.pk}": "yes" if c.kind == CriterionKind.INCLUSION else "no"
        for c in subject.protocol.criteria.all()
    }


def test_the_clinician_answers_the_checklist_and_sees_the_evaluation(client, clinician, subject):
    client.force_login(clinician)
    url = reverse("samples:eligibility-checklist", args=[subject.code])
    page = body(client.get(url))
    assert "Age at screening" in page
    assert "45 years" in page
    assert "6 checklist item(s) not answered yet." in page
    response = client.post(url, _checklist_form(subject))
    assert response.status_code == 302
    answers = EligibilityAnswer.objects.filter(subject=subject)
    assert answers.count() == subject.protocol.criteria.count() == 6
    assert {last_history(a).history_user for a in answers} == {clinician}
    page = body(client.get(subject.get_absolute_url()))
    assert '<span class="status status-eligible">eligible</span>' in page


def test_the_checklist_of_an_enrolled_subject_cannot_change_and_nothing_is_written(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(clinician)
    before = history_rows()
    form = _checklist_form(subject) | {f"criterion_{subject.protocol.criteria.first().pk}": "no"}
    response = client.post(reverse("samples:eligibility-checklist", args=[subject.code]), form)
    assert response.status_code == 400
    assert f"Subject {subject.code} is enrolled (eligibility confirmed); the checklist can no longer change." in body(
        response
    )
    assert history_rows() == before


def test_the_clinician_signs_eligibility_and_the_subject_is_enrolled(client, clinician, password, subject):
    answer_checklist(subject, clinician)
    client.force_login(clinician)
    response = client.post(
        reverse("samples:eligibility-confirm", args=[subject.code]),
        {"username": clinician.username, "password": password, "reason": "all criteria met"},
    )
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.ENROLLED
    signature = Signature.objects.get(object_id=subject.pk, meaning="eligibility_confirmed")
    assert signature.signer == clinician
    assert last_history(subject).history_user == clinician
    assert "Eligibility confirmed</strong> by Clara Clinician" in body(client.get(subject.get_absolute_url()))


def test_confirming_an_ineligible_subject_is_refused_with_the_reasons_and_nothing_is_written(
    client, clinician, password, subject
):
    answer_checklist(subject, clinician, eligible=False)
    client.force_login(clinician)
    before = history_rows()
    response = client.post(
        reverse("samples:eligibility-confirm", args=[subject.code]),
        {"username": clinician.username, "password": password, "reason": "looks fine"},
    )
    assert response.status_code == 400
    page = body(response)
    assert "Subject is not eligible:" in page
    assert 'id="refusal-reasons"' in page
    assert "<li>Inclusion criterion not met:" in page
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREENING
    assert history_rows() == before


def test_the_clinician_records_a_screen_failure_with_its_reason(client, clinician, subject):
    client.force_login(clinician)
    response = client.post(reverse("samples:subject-screen-fail", args=[subject.code]), {"reason": "RF negative"})
    assert response.status_code == 302
    subject.refresh_from_db()
    assert (subject.status, subject.status_reason) == (SubjectStatus.INELIGIBLE, "RF negative")
    history = last_history(subject)
    assert (history.history_user, history.history_change_reason) == (clinician, "RF negative")


def test_an_enrolled_subject_cannot_be_screen_failed_and_nothing_is_written(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(clinician)
    before = history_rows()
    response = client.post(reverse("samples:subject-screen-fail", args=[subject.code]), {"reason": "oops"})
    assert response.status_code == 400
    assert "it cannot become not eligible." in body(response)
    assert history_rows() == before


def test_the_lab_manager_withdraws_an_enrolled_subject(client, clinician, lab_manager, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(lab_manager)
    response = client.post(reverse("samples:subject-withdraw", args=[subject.code]), {"reason": "consent withdrawn"})
    assert response.status_code == 302
    subject.refresh_from_db()
    assert (subject.status, subject.status_reason) == (SubjectStatus.WITHDRAWN, "consent withdrawn")
    assert last_history(subject).history_user == lab_manager
    page = body(client.get(subject.get_absolute_url()))
    assert '<span class="status status-withdrawn">Withdrawn</span> — consent withdrawn' in page


def test_a_withdrawn_subject_cannot_be_withdrawn_again(client, clinician, subject):
    subject_withdraw(subject=subject, acting_user=clinician, reason="moved away")
    client.force_login(clinician)
    before = history_rows()
    response = client.post(reverse("samples:subject-withdraw", args=[subject.code]), {"reason": "again"})
    assert response.status_code == 400
    assert f"Subject {subject.code} is withdrawn; it cannot become withdrawn." in body(response)
    assert history_rows() == before


def test_a_reason_is_required_to_withdraw(client, clinician, subject):
    client.force_login(clinician)
    response = client.post(reverse("samples:subject-withdraw", args=[subject.code]), {"reason": "  "})
    assert response.status_code == 400
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREENING


# --- The subject page ------------------------------------------------------------------------


def test_the_subject_page_shows_eligibility_aspirates_follow_up_and_das28(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    aspirate = collected_aspirate(subject, clinician)
    sample = sample_at(subject, clinician, 0)
    treg = subject.protocol.analytes.get(name="Treg")
    assay_result_record(sample=sample, analyte=treg, value="4.2", acting_user=clinician)
    disease_activity_record(
        subject=subject,
        visit=sample.visit,
        acting_user=clinician,
        assessed_on=timezone.localdate(),
        tender=4,
        swollen=2,
        esr_mm_h="20",
        patient_vas_mm=40,
    )
    client.force_login(clinician)
    page = body(client.get(subject.get_absolute_url()))
    assert "Age at screening" in page
    assert "v1" in page
    assert aspirate.code in page
    assert '<span class="status status-collected">Collected</span>' in page
    assert sample.code in page
    assert "Treg 4.2 %" in page
    assert '4.17 <span class="status status-moderate">' in page
    for step in ("aspirate-collect", "follow-up-collect", "das28-record", "subject-withdraw"):
        assert reverse(f"samples:{step}", args=[subject.code]) in page
    assert reverse("samples:eligibility-confirm", args=[subject.code]) not in page, "already enrolled"
    assert f"WB-{subject.code}" in page, "the wristband's QR and custody are on the page"


def test_an_operator_sees_no_clinic_buttons_on_the_subject_page(client, operator, subject):
    client.force_login(operator)
    page = body(client.get(subject.get_absolute_url()))
    assert reverse("samples:eligibility-checklist", args=[subject.code]) not in page
    assert reverse("samples:subject-withdraw", args=[subject.code]) not in page


def _subject_with_samples(study, clinician, password, months) -> Subject:
    subject = enrolled_subject(study, clinician, password)
    analytes = list(subject.protocol.analytes.order_by("position")[:3])
    for number, month in enumerate(months):
        sample = sample_at(subject, clinician, month, days_ago=10 + number)
        for analyte in analytes:
            assay_result_record(sample=sample, analyte=analyte, value="4.2", acting_user=clinician)
        disease_activity_record(
            subject=subject,
            visit=sample.visit,
            acting_user=clinician,
            assessed_on=timezone.localdate(),
            tender=3,
            swollen=1,
            esr_mm_h="12",
            patient_vas_mm=30,
        )
        collected_aspirate(subject, clinician, hours_ago=1 + number)
    return subject


def test_the_subject_page_query_count_does_not_grow_with_samples_results_and_aspirates(
    client, clinician, password, study
):
    one = _subject_with_samples(study, clinician, password, [0])
    four = _subject_with_samples(study, clinician, password, [0, 1, 6, 12])
    client.force_login(clinician)
    client.get(one.get_absolute_url())  # warm the content-type cache
    counts = []
    for subject in (one, four):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(subject.get_absolute_url())
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert body(response).count("Treg 4.2 %") == 4


# --- Aspirates -------------------------------------------------------------------------------


@pytest.mark.requirement("CFR1271.290")
def test_the_clinician_registers_an_aspirate_and_its_tube_gets_a_label(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(clinician)
    collected = timezone.now() - dt.timedelta(hours=1)
    response = client.post(
        reverse("samples:aspirate-collect", args=[subject.code]),
        {
            "collected_at": local(collected),
            "volume_ml": "18.5",
            "site": "posterior iliac crest",
            "anticoagulant": "heparin",
        },
    )
    aspirate = Aspirate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == aspirate.get_absolute_url()
    assert (aspirate.code, aspirate.volume_ml, aspirate.collected_by) == (
        f"AS-{subject.code}-1",
        Decimal("18.5"),
        clinician,
    )
    assert last_history(aspirate).history_user == clinician
    page = body(client.get(aspirate.get_absolute_url()))
    assert "18.5 mL" in page
    assert f'src="{reverse("label-qr", args=[aspirate.code])}?v=' in page
    assert aspirate.code in page


def test_an_aspirate_of_a_subject_still_in_screening_is_refused_and_nothing_is_written(client, clinician, subject):
    client.force_login(clinician)
    before = history_rows()
    response = client.post(
        reverse("samples:aspirate-collect", args=[subject.code]),
        {"collected_at": local(timezone.now()), "volume_ml": "18", "site": "crest", "anticoagulant": "heparin"},
    )
    assert response.status_code == 400
    assert "eligibility must be confirmed and signed before aspirate collection." in body(response)
    assert Aspirate.objects.count() == 0
    assert history_rows() == before


def _dispatch_form(aspirate) -> dict[str, str]:
    return {
        "courier": "Carl Courier",
        "temperature_c": "21",
        "dispatched_at": local(aspirate.collected_at + dt.timedelta(minutes=30)),
        "location": "Clinic",
    }


def test_the_clinician_dispatches_the_tube_with_a_courier(client, clinician, password, study):
    aspirate = collected_aspirate(enrolled_subject(study, clinician, password), clinician)
    client.force_login(clinician)
    response = client.post(reverse("samples:aspirate-dispatch", args=[aspirate.code]), _dispatch_form(aspirate))
    assert response.status_code == 302
    aspirate.refresh_from_db()
    assert aspirate.status == AspirateStatus.IN_TRANSIT
    assert CustodyEvent.objects.get().received_by == "Carl Courier"
    assert last_history(aspirate).history_user == clinician
    assert "Clara Clinician → Carl Courier" in body(client.get(aspirate.get_absolute_url()))


@pytest.mark.requirement("CFR11.10f")
def test_a_tube_already_in_transit_cannot_be_dispatched_again(client, clinician, password, study):
    aspirate = aspirate_in_transit(enrolled_subject(study, clinician, password), clinician)
    client.force_login(clinician)
    before = history_rows()
    response = client.post(reverse("samples:aspirate-dispatch", args=[aspirate.code]), _dispatch_form(aspirate))
    assert response.status_code == 400
    assert f"Aspirate {aspirate.code} is in transit to the cleanroom and cannot be dispatched." in body(response)
    assert history_rows() == before


@pytest.fixture
def arriving(study, clinician, password) -> Aspirate:
    return aspirate_in_transit(enrolled_subject(study, clinician, password), clinician)


def _receipt(aspirate, **changes) -> dict[str, str]:
    return {
        "scanned_payload": label_payload(aspirate.code),
        "received_at": local(timezone.now()),
        "temperature_c": "21.5",
        "container_intact": "yes",
        "courier": "Carl Courier",
        "decision": "accept",
        "reason": "",
    } | changes


def test_the_operator_receives_a_tube_within_the_limits(client, operator, arriving):
    client.force_login(operator)
    url = reverse("samples:aspirate-receive", args=[arriving.code])
    assert 'class="scan-input"' in body(client.get(url))
    assert "autofocus" in body(client.get(url))
    response = client.post(url, _receipt(arriving))
    assert response.status_code == 302
    arriving.refresh_from_db()
    assert (arriving.status, arriving.received_by, arriving.receipt_temperature_c) == (
        AspirateStatus.ACCEPTED,
        operator,
        Decimal("21.5"),
    )
    assert last_history(arriving).history_user == operator
    assert CustodyEvent.objects.filter(received_by="Olivia Operator").count() == 1


def test_outside_the_limits_the_operator_is_asked_to_decide_and_nothing_is_written(client, operator, arriving):
    client.force_login(operator)
    url = reverse("samples:aspirate-receive", args=[arriving.code])
    before = history_rows()
    response = client.post(url, _receipt(arriving, temperature_c="31"))
    assert response.status_code == 400
    page = body(response)
    assert 'id="outside-limits"' in page
    assert "Outside the transport limits: received at 31 °C (allowed 15.0–25.0 °C)." in page
    arriving.refresh_from_db()
    assert arriving.status == AspirateStatus.IN_TRANSIT
    assert history_rows() == before

    response = client.post(
        url, _receipt(arriving, temperature_c="31", decision="accept_with_deviation", reason="cells look fine")
    )
    assert response.status_code == 302
    arriving.refresh_from_db()
    assert arriving.status == AspirateStatus.ACCEPTED_WITH_DEVIATION
    deviation = Deviation.objects.get()
    page = body(client.get(arriving.get_absolute_url()))
    assert deviation.code in page
    assert '<span class="status status-open">Open</span>' in page
    assert "received at 31 °C" in page


def test_scanning_another_tube_at_receipt_is_refused_and_nothing_is_written(client, operator, clinician, arriving):
    other = collected_aspirate(arriving.subject, clinician, hours_ago=2)
    client.force_login(operator)
    before = history_rows()
    response = client.post(
        reverse("samples:aspirate-receive", args=[arriving.code]),
        _receipt(arriving, scanned_payload=label_payload(other.code)),
    )
    assert response.status_code == 400
    assert f"You scanned {other.code}, but this step is for {arriving.code}." in body(response)
    assert history_rows() == before


def test_scanning_a_tube_at_the_cleanroom_door_opens_its_receipt_form(client, operator, arriving):
    client.force_login(operator)
    payload = label_payload(arriving.code)
    response = client.post(reverse("samples:receive-scan"), {"payload": payload})
    assert response.status_code == 302
    expected = reverse("samples:aspirate-receive", args=[arriving.code]) + "?" + urlencode({"payload": payload})
    assert response["Location"] == expected
    assert f'value="{payload}"' in body(client.get(expected)), "the scan is carried into the form"


@pytest.mark.requirement("CFR11.10h")
def test_scanning_a_wristband_at_the_cleanroom_door_is_refused(client, operator, arriving):
    client.force_login(operator)
    before = history_rows()
    response = client.post(reverse("samples:receive-scan"), {"payload": label_payload(f"WB-{arriving.subject.code}")})
    assert response.status_code == 400
    assert "is a wristband label, not an aspirate tube." in body(response)
    assert history_rows() == before


# --- Follow-up -------------------------------------------------------------------------------


def test_the_clinician_registers_the_baseline_blood_sample(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    baseline = subject.protocol.visits.get(month=0)
    client.force_login(clinician)
    response = client.post(
        reverse("samples:follow-up-collect", args=[subject.code]),
        {"visit": baseline.pk, "collected_at": local(timezone.now() - dt.timedelta(hours=2))},
    )
    sample = FollowUpSample.objects.get()
    assert response.status_code == 302
    assert response["Location"] == sample.get_absolute_url()
    assert (sample.code, sample.visit, sample.collected_by) == (f"BL-{subject.code}-M0", baseline, clinician)
    assert last_history(sample).history_user == clinician


def test_a_second_sample_for_the_same_visit_is_refused_and_nothing_is_written(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    sample = sample_at(subject, clinician, 0)
    client.force_login(clinician)
    before = history_rows()
    response = client.post(
        reverse("samples:follow-up-collect", args=[subject.code]),
        {"visit": sample.visit.pk, "collected_at": local(timezone.now())},
    )
    assert response.status_code == 400
    assert f"{subject.code} already has a Baseline sample." in body(response)
    assert history_rows() == before


@pytest.fixture
def baseline_sample(study, clinician, password) -> FollowUpSample:
    return sample_at(enrolled_subject(study, clinician, password), clinician, 0)


def _analyte_field(sample, name: str) -> str:
    return f"analyte_{sample.subject.protocol.analytes.get(name=name).pk}"


def test_the_clinician_enters_several_results_at_once(client, clinician, baseline_sample):
    client.force_login(clinician)
    form = {_analyte_field(baseline_sample, "Treg"): "4.2", _analyte_field(baseline_sample, "Th17"): "1.1"}
    response = client.post(reverse("samples:follow-up-results", args=[baseline_sample.code]), form)
    assert response.status_code == 302
    results = {r.analyte.name: r.value for r in AssayResult.objects.select_related("analyte")}
    assert results == {"Treg": Decimal("4.2"), "Th17": Decimal("1.1")}
    assert {last_history(r).history_user for r in AssayResult.objects.all()} == {clinician}
    page = body(client.get(baseline_sample.get_absolute_url()))
    assert '<td class="num">4.2</td>' in page
    assert "0–100" in page


def test_one_impossible_value_leaves_none_of_the_results_written(client, clinician, baseline_sample):
    client.force_login(clinician)
    before = history_rows()
    form = {_analyte_field(baseline_sample, "Treg"): "4.2", _analyte_field(baseline_sample, "Th17"): "150"}
    response = client.post(reverse("samples:follow-up-results", args=[baseline_sample.code]), form)
    assert response.status_code == 400
    assert "Th17 of 150 % is outside its possible range (0–100 %)." in body(response)
    assert AssayResult.objects.count() == 0, "Treg, entered first, is rolled back too"
    assert history_rows() == before


def test_correcting_a_result_needs_a_reason(client, clinician, baseline_sample):
    treg = baseline_sample.subject.protocol.analytes.get(name="Treg")
    assay_result_record(sample=baseline_sample, analyte=treg, value="4.2", acting_user=clinician)
    client.force_login(clinician)
    url = reverse("samples:follow-up-results", args=[baseline_sample.code])
    field = _analyte_field(baseline_sample, "Treg")
    response = client.post(url, {field: "4.5"})
    assert response.status_code == 400
    assert "Please give a reason for correcting the Treg result" in body(response)
    assert AssayResult.objects.get().value == Decimal("4.2")
    response = client.post(url, {field: "4.5", "reason": "transcription error"})
    assert response.status_code == 302
    result = AssayResult.objects.get()
    assert result.value == Decimal("4.5")
    assert last_history(result).history_change_reason == "corrected: transcription error"


def _das28_form(subject, **changes) -> dict[str, str]:
    return {
        "visit": str(subject.protocol.visits.get(month=0).pk),
        "assessed_on": timezone.localdate().isoformat(),
        "tender": "4",
        "swollen": "2",
        "esr_mm_h": "20",
        "patient_vas_mm": "40",
        "reason": "",
    } | changes


def test_the_clinician_records_das28_and_stroma_computes_the_score(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(clinician)
    response = client.post(reverse("samples:das28-record", args=[subject.code]), _das28_form(subject))
    assert response.status_code == 302
    record = DiseaseActivity.objects.get()
    # 0.56·√4 + 0.28·√2 + 0.70·ln 20 + 0.014·40 = 1.12 + 0.396 + 2.097 + 0.56 = 4.17
    assert (record.das28_esr, record.category, record.recorded_by) == (Decimal("4.17"), "moderate", clinician)
    assert last_history(record).history_user == clinician


def test_das28_with_more_than_28_tender_joints_is_refused_and_nothing_is_written(client, clinician, password, study):
    subject = enrolled_subject(study, clinician, password)
    client.force_login(clinician)
    before = history_rows()
    response = client.post(reverse("samples:das28-record", args=[subject.code]), _das28_form(subject, tender="29"))
    assert response.status_code == 400
    assert "Cannot compute DAS28-ESR: joint counts are out of 28." in body(response)
    assert history_rows() == before


# --- Who may do what -------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    url: str
    data: dict[str, str]


class Steps:
    """Every state-changing page with a form its own role submits successfully; each page's
    prerequisites are arranged only when that page is asked for, so no two steps get in each other's way."""

    def __init__(self, study, clinician, lab_manager, password) -> None:
        self.study, self.clinician, self.lab_manager, self.password = study, clinician, lab_manager, password

    @cached_property
    def screening(self) -> Subject:
        subject = screened(self.study, self.clinician)
        answer_checklist(subject, self.clinician)
        return subject

    @cached_property
    def subject(self) -> Subject:
        return enrolled_subject(self.study, self.clinician, self.password)

    @cached_property
    def aspirate(self) -> Aspirate:
        return collected_aspirate(self.subject, self.clinician)

    @cached_property
    def arriving(self) -> Aspirate:
        return aspirate_in_transit(self.subject, self.clinician, hours_ago=2)

    @cached_property
    def sample(self) -> FollowUpSample:
        return sample_at(self.subject, self.clinician, 0)

    def signed(self, user) -> dict[str, str]:
        return {"username": user.username, "password": self.password, "reason": "ok"}

    def __getitem__(self, name: str) -> Step:
        url = partial(reverse, f"samples:{name}")
        if name == "protocol-revise":
            return Step(url(args=[self.study.code]), _revision_form(self.study) | {"passage_limit": "5"})
        if name == "protocol-approve":
            return Step(url(args=[_draft(self.study, self.lab_manager).pk]), self.signed(self.lab_manager))
        if name == "subject-register":
            return Step(url(args=[self.study.code]), _registration())
        if name == "eligibility-checklist":
            return Step(url(args=[self.screening.code]), _checklist_form(self.screening))
        if name == "eligibility-confirm":
            return Step(url(args=[self.screening.code]), self.signed(self.clinician))
        if name in ("subject-screen-fail", "subject-withdraw"):
            return Step(url(args=[self.screening.code]), {"reason": "consent withdrawn"})
        if name == "aspirate-collect":
            form = {
                "collected_at": local(timezone.now()),
                "volume_ml": "10",
                "site": "crest",
                "anticoagulant": "heparin",
            }
            return Step(url(args=[self.subject.code]), form)
        if name == "aspirate-dispatch":
            return Step(url(args=[self.aspirate.code]), _dispatch_form(self.aspirate))
        if name == "aspirate-receive":
            return Step(url(args=[self.arriving.code]), _receipt(self.arriving))
        if name == "receive-scan":
            return Step(url(), {"payload": label_payload(self.arriving.code)})
        if name == "follow-up-collect":
            visit = self.subject.protocol.visits.get(month=1)
            return Step(url(args=[self.subject.code]), {"visit": str(visit.pk), "collected_at": local(timezone.now())})
        if name == "follow-up-results":
            return Step(url(args=[self.sample.code]), {_analyte_field(self.sample, "Treg"): "4.2"})
        if name == "das28-record":
            return Step(url(args=[self.subject.code]), _das28_form(self.subject))
        raise KeyError(name)


@pytest.fixture
def steps(study, clinician, lab_manager, password) -> Steps:
    return Steps(study, clinician, lab_manager, password)


STATE_CHANGING = [
    "protocol-revise",
    "protocol-approve",
    "subject-register",
    "eligibility-checklist",
    "eligibility-confirm",
    "subject-screen-fail",
    "subject-withdraw",
    "aspirate-collect",
    "aspirate-dispatch",
    "aspirate-receive",
    "receive-scan",
    "follow-up-collect",
    "follow-up-results",
    "das28-record",
]


ROLE_OF_STEP = {"protocol-revise": "lab_manager", "protocol-approve": "lab_manager"} | {
    "aspirate-receive": "operator",
    "receive-scan": "operator",
}


@pytest.mark.parametrize("name", STATE_CHANGING)
def test_each_step_succeeds_for_its_own_role_with_the_form_the_refusal_tests_send(request, client, steps, name):
    client.force_login(request.getfixturevalue(ROLE_OF_STEP.get(name, "clinician")))
    step = steps[name]
    response = client.post(step.url, step.data)
    assert response.status_code == 302, body(response)


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
@pytest.mark.parametrize("name", STATE_CHANGING)
def test_an_outsider_is_refused_every_step_and_nothing_changes(client, outsider, steps, name):
    step = steps[name]
    client.force_login(outsider)
    before = history_rows(with_evidence=True)
    assert client.get(step.url).status_code == 403
    assert client.post(step.url, step.data).status_code == 403
    assert history_rows(with_evidence=True) == before


@pytest.mark.requirement("ANNEX11.12")
@pytest.mark.parametrize("name", STATE_CHANGING)
def test_an_anonymous_visitor_is_sent_to_the_login_page_and_nothing_changes(client, steps, name):
    step = steps[name]
    before = history_rows(with_evidence=True)
    for response in (client.get(step.url), client.post(step.url, step.data)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")
    assert history_rows(with_evidence=True) == before


@pytest.mark.requirement("CFR11.10g")
@pytest.mark.parametrize(
    ("role", "name"),
    [
        ("operator", "protocol-approve"),
        ("operator", "subject-register"),
        ("operator", "aspirate-collect"),
        ("operator", "das28-record"),
        ("qa_officer", "follow-up-results"),
        ("clinician", "protocol-revise"),
        ("clinician", "aspirate-receive"),
        ("clinician", "receive-scan"),
        ("lab_manager", "eligibility-confirm"),
    ],
)
def test_a_role_without_the_permission_is_refused_and_nothing_changes(request, client, steps, role, name):
    step = steps[name]
    client.force_login(request.getfixturevalue(role))
    before = history_rows(with_evidence=True)
    assert client.post(step.url, step.data).status_code == 403
    assert history_rows(with_evidence=True) == before


@pytest.mark.requirement("ANNEX11.12")
@pytest.mark.parametrize(
    "url_name", ["study-list", "study-detail", "subject-list", "subject-detail", "aspirate-detail", "follow-up-sample"]
)
def test_the_read_pages_need_a_login_and_a_role(client, outsider, steps, url_name):
    args = {
        "study-detail": [steps.study.code],
        "subject-detail": [steps.subject.code],
        "aspirate-detail": [steps.aspirate.code],
        "follow-up-sample": [steps.sample.code],
    }.get(url_name, [])
    url = reverse(f"samples:{url_name}", args=args)
    assert client.get(url).status_code == 302
    client.force_login(outsider)
    assert client.get(url).status_code == 403
