"""Release testing and QA's decision: stored flags, fail-closed evaluation, signed release."""

from __future__ import annotations

import pytest

from lims.errors import DomainError
from lims.models import Deviation, SignatureFailure
from lims.signatures import SignatureRequest, signatures_for
from manufacturing.models import BatchStatus, QcFlag, QcResult, ResultStatus
from manufacturing.services.release import (
    ResultEntry,
    batch_release_decide,
    batch_start_release_testing,
    deviation_close,
    em_reading_record,
    processing_session_open,
    qc_result_invalidate,
    qc_result_record,
)
from tests.manufacturing.helpers import (
    accepted_aspirate,
    approved_specification,
    enter_passing_results,
    harvested_batch,
    started_batch,
)


@pytest.fixture
def second_qa(db):
    from lims.roles import QA
    from tests.factories import UserFactory

    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA)


@pytest.fixture
def testing_batch(study, batch, operator, qa_officer, password, media_lots):
    approved_specification(study, qa_officer, password)
    harvested_batch(batch, operator, media_lots)
    return batch_start_release_testing(batch=batch, acting_user=operator)


def _criterion(batch, attribute):
    return batch.specification.criteria.get(attribute=attribute)


def _enter(batch, attribute, user, value="", unit="%", outcome=""):
    return qc_result_record(
        batch=batch,
        criterion=_criterion(batch, attribute),
        acting_user=user,
        entry=ResultEntry(value=value, unit=unit if value else "", outcome=outcome, analyst="Q. C. Analyst"),
    )


def _sign(user, password, meaning="released", reason="all criteria met, deviations closed, audit trail reviewed"):
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason=reason)


@pytest.mark.parametrize(
    ("attribute", "value", "flag"),
    [
        ("CD73", "95.0", QcFlag.PASS),
        ("CD73", "94.9", QcFlag.OOS),
        ("HLA-DR", "2.0", QcFlag.PASS),
        ("HLA-DR", "2.1", QcFlag.OOS),
        ("Viability", "70.0", QcFlag.PASS),
        ("Viability", "69.9", QcFlag.OOS),
    ],
)
def test_results_at_and_just_past_their_limits(testing_batch, operator, attribute, value, flag):
    assert _enter(testing_batch, attribute, operator, value).flag == flag


def test_growth_detected_fails_sterility(testing_batch, operator):
    assert _enter(testing_batch, "Sterility", operator, outcome="growth detected").flag == QcFlag.OOS


def test_a_value_below_the_detection_limit_is_evaluated_as_such(testing_batch, operator):
    assert _enter(testing_batch, "CD45", operator, "<0.5").flag == QcFlag.PASS
    result = _enter(testing_batch, "CD105", operator, "<96")
    assert result.flag == QcFlag.NOT_EVALUABLE, "below 96 % might be below 95 %: it cannot count as a pass"


def test_the_passage_is_evaluated_from_the_batch_record_when_testing_starts(testing_batch):
    result = testing_batch.qc_results.get(criterion__attribute="Passage")
    assert (result.flag, result.numeric_value) == (QcFlag.PASS, 0)


@pytest.mark.parametrize(
    ("attribute", "value", "unit", "outcome", "message"),
    [
        ("CD73", "98", "cells", "", "must be reported in %"),
        ("CD73", "120", "%", "", "a percentage is 0 to 100"),
        ("CD73", "", "", "pass", "reported as a number"),
        ("Sterility", "0", "%", "", "reported as 'no growth' or 'growth detected'"),
        ("Mycoplasma", "", "", "maybe", "reported as 'not detected' or 'detected'"),
    ],
)
def test_results_in_the_wrong_form_are_refused_and_nothing_is_saved(
    testing_batch, operator, attribute, value, unit, outcome, message
):
    before = QcResult.objects.count()
    with pytest.raises(DomainError, match=message):
        _enter(testing_batch, attribute, operator, value, unit, outcome)
    assert QcResult.objects.count() == before


@pytest.mark.requirement("CFR11.10e")
def test_an_oos_result_opens_an_investigation_and_its_flag_survives_a_passing_retest(
    testing_batch, operator, second_qa, password
):
    oos = _enter(testing_batch, "CD73", operator, "94.9")
    assert oos.investigation.source == "oos"
    retest = qc_result_record(
        batch=testing_batch,
        criterion=oos.criterion,
        acting_user=operator,
        retest_of=oos,
        entry=ResultEntry(value="96.2", unit="%", analyst="Q. C. Analyst"),
    )
    assert (retest.flag, retest.investigation) == (QcFlag.PASS, oos.investigation)
    invalidated = qc_result_invalidate(
        result=oos,
        acting_user=second_qa,
        signature=_sign(second_qa, password, meaning="reviewed", reason="pipetting error proven in the investigation"),
    )
    assert (invalidated.status, invalidated.flag) == (ResultStatus.INVALIDATED, QcFlag.OOS)
    assert QcResult.history.filter(id=oos.pk).exclude(flag=QcFlag.OOS).count() == 0


@pytest.mark.requirement("CFR11.10f")
def test_release_is_refused_with_every_reason_and_changes_nothing(testing_batch, operator, second_qa, password):
    enter_passing_results(testing_batch, operator, skip=("Mycoplasma", "CD73"))
    _enter(testing_batch, "CD73", operator, "94.0")
    with pytest.raises(DomainError) as refused:
        batch_release_decide(
            batch=testing_batch,
            acting_user=second_qa,
            decision=BatchStatus.RELEASED,
            signature=_sign(second_qa, password),
        )
    reasons = refused.value.reasons
    assert "Mycoplasma: no valid result" in reasons
    assert any(r.startswith("CD73: out of specification") for r in reasons)
    assert any(r.startswith("open deviation(s): DEV-") for r in reasons)
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING
    assert signatures_for(testing_batch) == []


@pytest.mark.requirement("CFR11.10g")
def test_the_person_who_made_the_batch_may_not_release_it(testing_batch, operator, qa_officer, password):
    enter_passing_results(testing_batch, operator)
    testing_batch.started_by = qa_officer
    testing_batch.save()
    with pytest.raises(DomainError, match="took part in making batch") as refused:
        batch_release_decide(
            batch=testing_batch,
            acting_user=qa_officer,
            decision=BatchStatus.RELEASED,
            signature=_sign(qa_officer, password),
        )
    assert refused.value.code == "segregation"
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING


@pytest.mark.requirement("CFR11.200")
def test_a_wrong_password_releases_nothing_and_is_recorded(testing_batch, operator, second_qa):
    enter_passing_results(testing_batch, operator)
    with pytest.raises(DomainError, match="Wrong username or password"):
        batch_release_decide(
            batch=testing_batch,
            acting_user=second_qa,
            decision=BatchStatus.RELEASED,
            signature=_sign(second_qa, "not-the-password"),
        )
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING
    assert SignatureFailure.objects.filter(username_entered=second_qa.username).count() == 1


@pytest.mark.requirement("CFR11.70", "ANNEX11.14", "CFR11.10f")
def test_a_complete_batch_is_released_with_a_signature_bound_to_its_results(
    testing_batch, operator, second_qa, password
):
    enter_passing_results(testing_batch, operator)
    released = batch_release_decide(
        batch=testing_batch, acting_user=second_qa, decision=BatchStatus.RELEASED, signature=_sign(second_qa, password)
    )
    assert released.status == BatchStatus.RELEASED
    [check] = signatures_for(released)
    assert (check.signature.meaning, check.valid) == ("released", True)
    with pytest.raises(DomainError, match="cannot be released by qa now"):
        batch_release_decide(
            batch=released, acting_user=second_qa, decision=BatchStatus.RELEASED, signature=_sign(second_qa, password)
        )


@pytest.mark.requirement("CFR11.50")
def test_a_release_signed_with_the_meaning_rejected_is_refused(testing_batch, operator, second_qa, password):
    enter_passing_results(testing_batch, operator)
    with pytest.raises(DomainError, match="signed with the meaning “released”"):
        batch_release_decide(
            batch=testing_batch,
            acting_user=second_qa,
            decision=BatchStatus.RELEASED,
            signature=_sign(second_qa, password, meaning="rejected"),
        )


def test_closing_the_investigation_and_invalidating_the_oos_result_allows_release(
    testing_batch, operator, second_qa, password
):
    enter_passing_results(testing_batch, operator, skip=("CD90",))
    oos = _enter(testing_batch, "CD90", operator, "93.0")
    qc_result_record(
        batch=testing_batch,
        criterion=oos.criterion,
        acting_user=operator,
        retest_of=oos,
        entry=ResultEntry(value="97.5", unit="%", analyst="Q. C. Analyst"),
    )
    qc_result_invalidate(
        result=oos,
        acting_user=second_qa,
        signature=_sign(second_qa, password, meaning="reviewed", reason="gating error found on re-analysis"),
    )
    deviation_close(
        deviation=oos.investigation,
        acting_user=second_qa,
        classification="minor",
        impact_assessment="no product impact",
        corrective_action="gating SOP retraining",
        signature=_sign(second_qa, password, meaning="reviewed", reason="investigation complete"),
    )
    released = batch_release_decide(
        batch=testing_batch, acting_user=second_qa, decision=BatchStatus.RELEASED, signature=_sign(second_qa, password)
    )
    assert released.status == BatchStatus.RELEASED


def test_an_em_excursion_opens_deviations_on_exactly_the_batches_of_that_session(study, clinician, operator, password):
    in_session = [started_batch(accepted_aspirate(study, clinician, operator, password), operator) for _ in range(2)]
    elsewhere = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    from django.utils import timezone

    session = processing_session_open(
        acting_user=operator,
        room="Cleanroom 1",
        cabinet="BSC-A",
        started_at=timezone.now(),
        operators="Olivia Operator",
        batches=in_session,
    )
    processing_session_open(
        acting_user=operator,
        room="Cleanroom 1",
        cabinet="BSC-B",
        started_at=timezone.now(),
        operators="Oscar Operator",
        batches=[elsewhere],
    )
    quiet = em_reading_record(
        session=session, acting_user=operator, grade="B", kind="settle", location="floor", value=3
    )
    assert not quiet.excursion
    reading = em_reading_record(
        session=session, acting_user=operator, grade="A", kind="settle", location="cabinet work zone", value=1
    )
    assert reading.excursion
    deviations = Deviation.objects.filter(source="environment")
    assert sorted(d.record.lot_number for d in deviations) == sorted(b.lot_number for b in in_session)


@pytest.mark.requirement("CFR11.10f")
def test_a_second_result_for_a_criterion_must_be_a_retest(testing_batch, operator):
    _enter(testing_batch, "CD90", operator, "97.0")
    with pytest.raises(DomainError, match="already has a valid result"):
        _enter(testing_batch, "CD90", operator, "99.0")


def test_an_unevaluable_result_can_be_retested(testing_batch, operator):
    unclear = _enter(testing_batch, "CD105", operator, "<96")
    retest = qc_result_record(
        batch=testing_batch,
        criterion=unclear.criterion,
        acting_user=operator,
        retest_of=unclear,
        entry=ResultEntry(value="97.1", unit="%", analyst="Q. C. Analyst"),
    )
    assert retest.flag == QcFlag.PASS
