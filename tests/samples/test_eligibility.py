"""Enrolment: sex and age from the protocol, the investigator's checklist, and a signed confirmation."""

from __future__ import annotations

import datetime as dt

import pytest

from lims.errors import DomainError
from lims.signatures import SignatureRequest, signatures_for
from samples.calculations import age_in_whole_years
from samples.models import SubjectStatus
from samples.services import (
    aspirate_collect,
    eligibility_evaluate,
    subject_answer_eligibility,
    subject_confirm_eligibility,
    subject_register,
    subject_withdraw,
)
from tests.samples.helpers import an_hour_ago, enrolled_subject

SCREENING = dt.date(2026, 6, 15)


def _register(study, clinician, *, born: dt.date, sex: str = "F"):
    return subject_register(
        study=study,
        acting_user=clinician,
        sex=sex,
        date_of_birth=born,
        screening_date=SCREENING,
        consent_date=SCREENING,
    )


def _all_yes(subject):
    return {c.pk: c.kind == "inclusion" for c in subject.protocol.criteria.all()}


@pytest.mark.parametrize(
    ("born", "eligible", "age"),
    [
        (dt.date(1991, 6, 15), True, 35),  # exactly 35 on the screening date
        (dt.date(1991, 6, 16), False, 34),  # one day short of 35
        (dt.date(1966, 6, 15), True, 60),  # exactly 60
        (dt.date(1965, 6, 16), True, 60),  # 61 tomorrow: still 60
        (dt.date(1965, 6, 14), False, 61),  # the day after turning 61
    ],
)
def test_age_at_screening_is_counted_in_whole_years_inclusive_at_both_ends(study, clinician, born, eligible, age):
    subject = _register(study, clinician, born=born)
    result = eligibility_evaluate(subject, _all_yes(subject))
    assert result.age_years == age
    assert result.eligible is eligible
    if not eligible:
        assert f"Age at screening is {age} years; the protocol requires 35 to 60 years." in result.reasons


def test_a_leap_day_birthday_turns_a_year_older_on_the_first_of_march():
    assert age_in_whole_years(dt.date(1988, 2, 29), dt.date(2023, 2, 28)) == 34
    assert age_in_whole_years(dt.date(1988, 2, 29), dt.date(2023, 3, 1)) == 35


def test_a_male_subject_is_not_eligible_and_the_reason_is_given(study, clinician):
    subject = _register(study, clinician, born=dt.date(1980, 1, 1), sex="M")
    result = eligibility_evaluate(subject, _all_yes(subject))
    assert not result.eligible
    assert "Sex is male; the protocol enrols female subjects only." in result.reasons


def test_an_unmet_inclusion_or_an_applying_exclusion_makes_the_subject_ineligible(study, clinician):
    subject = _register(study, clinician, born=dt.date(1980, 1, 1))
    answers = _all_yes(subject)
    healthy = subject.protocol.criteria.get(text="Healthy volunteer")
    answers[healthy.pk] = True
    result = eligibility_evaluate(subject, answers)
    assert "Exclusion criterion applies: Healthy volunteer." in result.reasons


@pytest.mark.requirement("CFR11.50", "ANNEX11.14")
def test_confirming_eligibility_signs_and_enrols(study, clinician, password):
    subject = enrolled_subject(study, clinician, password)
    assert subject.status == SubjectStatus.ENROLLED
    [check] = signatures_for(subject)
    assert check.signature.meaning == "eligibility_confirmed"
    assert check.valid
    latest = subject.history.latest()
    assert (latest.history_user, latest.status) == (clinician, "enrolled")


def test_an_ineligible_subject_cannot_be_confirmed_and_stays_in_screening(study, clinician, password):
    subject = _register(study, clinician, born=dt.date(1950, 1, 1))
    subject_answer_eligibility(subject=subject, acting_user=clinician, answers=_all_yes(subject))
    with pytest.raises(DomainError, match="Subject is not eligible: Age at screening is 76 years") as refused:
        subject_confirm_eligibility(
            subject=subject,
            acting_user=clinician,
            signature=SignatureRequest(
                username=clinician.username, password=password, meaning="eligibility_confirmed", reason="x"
            ),
        )
    assert refused.value.code == "ineligible"
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREENING
    assert signatures_for(subject) == []


def test_an_unanswered_checklist_cannot_be_confirmed(study, clinician, password):
    subject = _register(study, clinician, born=dt.date(1980, 1, 1))
    with pytest.raises(DomainError, match="checklist item"):
        subject_confirm_eligibility(
            subject=subject,
            acting_user=clinician,
            signature=SignatureRequest(
                username=clinician.username, password=password, meaning="eligibility_confirmed", reason="x"
            ),
        )


@pytest.mark.requirement("CFR11.10f")
def test_an_unsigned_subject_cannot_have_an_aspirate(study, clinician):
    subject = _register(study, clinician, born=dt.date(1980, 1, 1))
    with pytest.raises(DomainError, match="eligibility must be confirmed and signed"):
        aspirate_collect(subject=subject, acting_user=clinician, collected_at=an_hour_ago(), volume_ml="10")


@pytest.mark.requirement("CFR11.10f")
def test_a_withdrawn_subject_stops_everything_downstream(study, clinician, password):
    subject = enrolled_subject(study, clinician, password)
    subject_withdraw(subject=subject, acting_user=clinician, reason="withdrew consent on 2026-11-20")
    with pytest.raises(DomainError, match="was withdrawn \\(withdrew consent on 2026-11-20\\)"):
        aspirate_collect(subject=subject, acting_user=clinician, collected_at=an_hour_ago(), volume_ml="10")
    assert subject.history.latest().history_change_reason == "withdrew consent on 2026-11-20"


def test_withdrawal_needs_a_reason(study, clinician, password):
    subject = enrolled_subject(study, clinician, password)
    with pytest.raises(DomainError, match="reason"):
        subject_withdraw(subject=subject, acting_user=clinician, reason=" ")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_of_birth", dt.date(2026, 7, 1), "date of birth must be before the screening date"),
        ("consent_date", dt.date(2026, 6, 16), "Consent must be given on or before the screening date"),
        ("screening_date", dt.date(2999, 1, 1), "cannot be in the future"),
        ("sex", "X", "Choose the subject's sex"),
    ],
)
def test_impossible_registrations_are_refused_and_nothing_is_saved(study, clinician, field, value, message):
    values = {"sex": "F", "date_of_birth": dt.date(1980, 1, 1), "screening_date": SCREENING, "consent_date": SCREENING}
    values[field] = value
    with pytest.raises(DomainError, match=message):
        subject_register(study=study, acting_user=clinician, **values)
    assert study.subjects.count() == 0


def test_subject_codes_are_pseudonymous_and_sequential(study, clinician):
    first = _register(study, clinician, born=dt.date(1980, 1, 1))
    second = _register(study, clinician, born=dt.date(1981, 1, 1))
    assert (first.code, second.code) == ("RAMSC-001", "RAMSC-002")


@pytest.mark.requirement("CFR11.10g")
def test_an_operator_cannot_register_or_enrol_subjects(study, operator):
    with pytest.raises(DomainError, match="Your role does not allow you to register subjects"):
        _register(study, operator, born=dt.date(1980, 1, 1))
