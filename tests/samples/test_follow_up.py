"""Follow-up: visit samples, assay results with their ranges, and DAS28-ESR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lims.errors import DomainError
from samples.calculations import change_from_baseline, das28_category, das28_esr
from samples.models import AssayResult
from samples.services import assay_result_record, disease_activity_record, follow_up_sample_collect
from tests.samples.helpers import an_hour_ago, enrolled_subject


@pytest.fixture
def enrolled(study, clinician, password):
    return enrolled_subject(study, clinician, password)


@pytest.fixture
def baseline_sample(enrolled, clinician):
    visit = enrolled.protocol.visits.get(month=0)
    return follow_up_sample_collect(subject=enrolled, visit=visit, acting_user=clinician, collected_at=an_hour_ago())


def _treg(subject):
    return subject.protocol.analytes.get(name="Treg")


def test_the_endpoint_change_matches_the_hand_checked_example():
    change = change_from_baseline(Decimal("4.2"), Decimal("6.3"))
    assert change.absolute == Decimal("2.1")
    assert change.relative_percent == Decimal("50.0")


def test_a_baseline_of_zero_has_no_relative_change_rather_than_an_error():
    change = change_from_baseline(Decimal("0"), Decimal("1.2"))
    assert (change.absolute, change.relative_percent) == (Decimal("1.2"), None)


@pytest.mark.parametrize(
    ("tender", "swollen", "esr", "vas", "score", "category"),
    [
        # 0.56·√8 + 0.28·√6 + 0.70·ln 38 + 0.014·62 = 1.584 + 0.686 + 2.546 + 0.868 = 5.68
        (8, 6, "38", 62, Decimal("5.68"), "high"),
        # 0.56·√3 + 0.28·√2 + 0.70·ln 18 + 0.014·30 = 0.970 + 0.396 + 2.023 + 0.420 = 3.81
        (3, 2, "18", 30, Decimal("3.81"), "moderate"),
        # 0 + 0 + 0.70·ln 10 + 0.014·10 = 1.612 + 0.140 = 1.75
        (0, 0, "10", 10, Decimal("1.75"), "remission"),
    ],
)
def test_das28_esr_matches_the_formula_on_hand_checked_visits(tender, swollen, esr, vas, score, category):
    result = das28_esr(tender=tender, swollen=swollen, esr_mm_h=Decimal(esr), patient_vas_mm=vas)
    assert result == score
    assert das28_category(result) == category


@pytest.mark.parametrize(
    ("score", "category"),
    [
        ("2.59", "remission"),
        ("2.6", "low"),
        ("3.2", "low"),
        ("3.21", "moderate"),
        ("5.1", "moderate"),
        ("5.11", "high"),
    ],
)
def test_das28_categories_at_their_boundaries(score, category):
    assert das28_category(Decimal(score)) == category


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_a_result_is_stored_with_who_and_why_and_a_correction_keeps_the_original(baseline_sample, clinician):
    treg = _treg(baseline_sample.subject)
    assay_result_record(sample=baseline_sample, analyte=treg, value="4.2", acting_user=clinician)
    with pytest.raises(DomainError, match="reason"):
        assay_result_record(sample=baseline_sample, analyte=treg, value="4.3", acting_user=clinician)
    corrected = assay_result_record(
        sample=baseline_sample,
        analyte=treg,
        value="4.3",
        acting_user=clinician,
        reason="transcription error, see FACS report p2",
    )
    assert corrected.value == Decimal("4.3")
    values = list(corrected.history.order_by("history_date").values_list("value", "history_change_reason"))
    assert values == [
        (Decimal("4.2"), "Treg result entered"),
        (Decimal("4.3"), "corrected: transcription error, see FACS report p2"),
    ]


@pytest.mark.parametrize("value", ["100.1", "-0.1", "abc", "NaN", "Infinity"])
def test_a_percentage_outside_0_to_100_or_not_a_number_is_refused(baseline_sample, clinician, value):
    with pytest.raises(DomainError):
        assay_result_record(
            sample=baseline_sample, analyte=_treg(baseline_sample.subject), value=value, acting_user=clinician
        )
    assert AssayResult.objects.count() == 0


def test_a_second_sample_for_the_same_visit_is_refused(enrolled, clinician, baseline_sample):
    with pytest.raises(DomainError, match="already has a Baseline sample"):
        follow_up_sample_collect(
            subject=enrolled, visit=baseline_sample.visit, acting_user=clinician, collected_at=an_hour_ago()
        )


def test_a_sample_dated_in_the_future_is_refused(enrolled, clinician):
    with pytest.raises(DomainError, match="cannot be in the future"):
        follow_up_sample_collect(
            subject=enrolled,
            visit=enrolled.protocol.visits.get(month=6),
            acting_user=clinician,
            collected_at=timezone.now() + dt.timedelta(days=2),
        )


def test_disease_activity_is_stored_with_its_score_and_category(enrolled, clinician):
    record = disease_activity_record(
        subject=enrolled,
        visit=enrolled.protocol.visits.get(month=0),
        acting_user=clinician,
        assessed_on=timezone.localdate(),
        tender=8,
        swollen=6,
        esr_mm_h="38",
        patient_vas_mm=62,
    )
    assert (record.das28_esr, record.category) == (Decimal("5.68"), "high")


@pytest.mark.parametrize(("tender", "esr", "vas"), [(29, "20", 50), (5, "0", 50), (5, "20", 101)])
def test_impossible_disease_activity_inputs_are_refused(enrolled, clinician, tender, esr, vas):
    with pytest.raises(DomainError, match="Cannot compute DAS28-ESR"):
        disease_activity_record(
            subject=enrolled,
            visit=enrolled.protocol.visits.get(month=0),
            acting_user=clinician,
            assessed_on=timezone.localdate(),
            tender=tender,
            swollen=2,
            esr_mm_h=esr,
            patient_vas_mm=vas,
        )
