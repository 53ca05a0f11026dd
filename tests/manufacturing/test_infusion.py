"""From the bag to the patient: dose, verification, custody, and the two-person bedside check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lims.errors import DomainError
from lims.labels import label_payload
from lims.signatures import SignatureRequest, signatures_for
from manufacturing.models import BedsideCheck, DoseStatus, Infusion, InfusionStatus, ProductStatus
from manufacturing.services.infusion import (
    InfusionRecord,
    bedside_verify,
    dose_calculate,
    infusion_complete,
    product_formulate,
)
from tests.manufacturing.helpers import NORMAL_VITALS, product_at_ward, released_batch


@pytest.fixture
def product(released, operator, clinician, second_clinician, password):
    return product_at_ward(released, operator, clinician, second_clinician, password)


def _witness(user, password, meaning="witnessed"):
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason="checked together")


def _bedside(product, clinician, second, password, *, wristband=None, bag=None):
    return bedside_verify(
        wristband_payload=wristband or label_payload(f"WB-{product.batch.subject.code}"),
        bag_payload=bag or label_payload(product.code),
        acting_user=clinician,
        second_clinician=_witness(second, password),
    )


@pytest.mark.requirement("CFR1271.290")
def test_the_product_label_carries_its_expiry_from_the_protocol(product):
    assert product.expires_at - product.formulated_at == dt.timedelta(hours=6)
    assert product.statement == "FOR AUTOLOGOUS USE ONLY"


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.50", "ANNEX11.14", "CFR1271.290")
def test_two_clinicians_verify_and_record_the_infusion_and_both_sign(
    product, clinician, second_clinician, password, time_machine
):
    infusion = _bedside(product, clinician, second_clinician, password)
    assert (infusion.administered_by, infusion.witnessed_by) == (clinician, second_clinician)
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=40))
    now = timezone.now()
    done = infusion_complete(
        infusion=infusion,
        acting_user=clinician,
        record=InfusionRecord(
            started_at=now - dt.timedelta(minutes=30),
            ended_at=now - dt.timedelta(minutes=5),
            volume_infused_ml="9.1",
            vitals_before=NORMAL_VITALS,
            vitals_after=NORMAL_VITALS,
        ),
        administered=_witness(clinician, password, "administered"),
        witnessed=_witness(second_clinician, password),
    )
    assert done.status == InfusionStatus.COMPLETED
    assert sorted(c.signature.meaning for c in signatures_for(done)) == ["administered", "witnessed"]
    product.refresh_from_db()
    assert product.status == ProductStatus.INFUSED


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10h")
def test_a_wristband_of_another_subject_is_a_hard_stop_and_is_recorded(
    product, clinician, second_clinician, password, study
):
    from samples.services import subject_register
    from tests.factories import subject_dates

    other = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    with pytest.raises(DomainError, match=r"HARD STOP .*WRONG PATIENT") as stop:
        _bedside(product, clinician, second_clinician, password, wristband=label_payload(f"WB-{other.code}"))
    assert stop.value.code == "hard_stop"
    check = BedsideCheck.objects.get()
    assert not check.passed
    assert "WRONG PATIENT" in check.findings
    assert Infusion.objects.count() == 0


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10g")
def test_the_same_clinician_as_both_checkers_is_a_hard_stop(product, clinician, password):
    with pytest.raises(DomainError, match="the same clinician cannot be both checkers"):
        _bedside(product, clinician, clinician, password)
    assert BedsideCheck.objects.get().passed is False


@pytest.mark.requirement("FACTJACIE.BEDSIDE")
def test_a_product_expired_by_one_minute_is_a_hard_stop(product, clinician, second_clinician, password, time_machine):
    time_machine.move_to(product.expires_at + dt.timedelta(minutes=1))
    with pytest.raises(DomainError, match=f"Product {product.code} expired at"):
        _bedside(product, clinician, second_clinician, password)


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10f")
def test_an_unverified_dose_is_a_hard_stop(released, operator, clinician, second_clinician, password):
    unverified = product_at_ward(released, operator, clinician, second_clinician, password, verified=False)
    with pytest.raises(DomainError, match="no verified dose calculation"):
        _bedside(unverified, clinician, second_clinician, password)


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10f")
def test_an_unreleased_product_is_a_hard_stop(study, clinician, operator, second_clinician, password, media_lots):
    from tests.manufacturing.helpers import accepted_aspirate, harvested_batch, started_batch

    batch = harvested_batch(
        started_batch(accepted_aspirate(study, clinician, operator, password), operator), operator, media_lots
    )
    product = product_formulate(batch=batch, acting_user=operator, total_viable_cells=10_000_000, volume_ml="5")
    with pytest.raises(DomainError, match="is not released"):
        bedside_verify(
            wristband_payload=label_payload(f"WB-{batch.subject.code}"),
            bag_payload=label_payload(product.code),
            acting_user=clinician,
            second_clinician=_witness(second_clinician, password),
        )
    assert "is not released" in BedsideCheck.objects.get().findings


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10h")
def test_a_forged_bag_code_is_a_hard_stop(product, clinician, second_clinician, password):
    forged = label_payload(product.code)[:-1] + "7"
    with pytest.raises(DomainError, match="does not verify"):
        _bedside(product, clinician, second_clinician, password, bag=forged)


@pytest.mark.requirement("CFR11.10f")
def test_a_new_calculation_voids_the_verified_one(product, clinician):
    verified = product.doses.get(status=DoseStatus.VERIFIED)
    dose_calculate(
        product=product,
        acting_user=clinician,
        weight_kg="41",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    verified.refresh_from_db()
    assert verified.status == DoseStatus.VOIDED


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        ("0", "outside the plausible"),
        ("-5", "outside the plausible"),
        ("500", "outside the plausible"),
        ("abc", "must be a number"),
    ],
)
def test_impossible_weights_are_refused(product, clinician, weight, message):
    with pytest.raises(DomainError, match=message):
        dose_calculate(
            product=product,
            acting_user=clinician,
            weight_kg=weight,
            weight_measured_on=timezone.localdate(),
            target_million_per_kg="1.0",
        )


def test_a_weight_measured_too_long_ago_is_refused(product, clinician):
    with pytest.raises(DomainError, match="measured 8 days ago; the protocol accepts at most 7"):
        dose_calculate(
            product=product,
            acting_user=clinician,
            weight_kg="40",
            weight_measured_on=timezone.localdate() - dt.timedelta(days=8),
            target_million_per_kg="1.0",
        )


def test_a_target_of_2_5_in_a_1_to_2_window_is_refused(product, clinician):
    with pytest.raises(DomainError, match="outside the protocol's window"):
        dose_calculate(
            product=product,
            acting_user=clinician,
            weight_kg="40",
            weight_measured_on=timezone.localdate(),
            target_million_per_kg="2.5",
        )


def test_the_dose_records_the_patients_endotoxin_limit_and_the_measured_value(product):
    dose = product.doses.get(status=DoseStatus.VERIFIED)
    # 40×10⁶ cells at 4.4×10⁶/mL = 9.09 mL → 9.1 mL (9.0 mL would give 0.99×10⁶/kg); 5 EU/kg × 40 kg ÷ 9.1 mL
    assert (dose.volume_ml, dose.achieved_million_per_kg) == (Decimal("9.1"), Decimal("1.001"))
    assert dose.endotoxin_limit_eu_per_ml == Decimal("21.978")
    assert dose.endotoxin_measured_eu_per_ml == Decimal("0.05"), "'<0.05 EU/mL' is taken at its upper bound"


def test_endotoxin_over_the_patients_limit_is_refused(study, clinician, operator, qa_officer, second_qa, password):
    from manufacturing.models import QcResult

    batch = released_batch(study, clinician, operator, qa_officer, second_qa, password)
    QcResult.objects.filter(batch=batch, criterion__attribute="Endotoxin").update(
        numeric_value=Decimal("30"), qualifier=""
    )
    product = product_formulate(batch=batch, acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
    with pytest.raises(DomainError, match=r"Endotoxin 30\.0000 EU/mL is above this patient's limit of 21\.978 EU/mL"):
        dose_calculate(
            product=product,
            acting_user=clinician,
            weight_kg="40",
            weight_measured_on=timezone.localdate(),
            target_million_per_kg="1.0",
        )


@pytest.mark.requirement("CFR11.10g")
def test_the_calculator_may_not_verify_their_own_dose(product, clinician, password):
    from manufacturing.services.infusion import dose_verify

    dose = dose_calculate(
        product=product,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    with pytest.raises(DomainError, match="cannot also verify"):
        dose_verify(
            dose=dose,
            acting_user=clinician,
            signature=SignatureRequest(username=clinician.username, password=password, meaning="verified", reason="x"),
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("heart_rate_bpm", "400", "outside human range"),
        ("temperature_c", "25", "outside human range"),
    ],
)
def test_vital_signs_outside_human_ranges_are_refused(
    product, clinician, second_clinician, password, field, value, message
):
    infusion = _bedside(product, clinician, second_clinician, password)
    now = timezone.now()
    with pytest.raises(DomainError, match=message):
        infusion_complete(
            infusion=infusion,
            acting_user=clinician,
            record=InfusionRecord(
                started_at=now - dt.timedelta(minutes=20),
                ended_at=now,
                volume_infused_ml="9.1",
                vitals_before={**NORMAL_VITALS, field: value},
                vitals_after=NORMAL_VITALS,
            ),
            administered=_witness(clinician, password, "administered"),
            witnessed=_witness(second_clinician, password),
        )


def test_an_end_before_the_start_is_refused(product, clinician, second_clinician, password):
    infusion = _bedside(product, clinician, second_clinician, password)
    now = timezone.now()
    with pytest.raises(DomainError, match="cannot end before it started"):
        infusion_complete(
            infusion=infusion,
            acting_user=clinician,
            record=InfusionRecord(
                started_at=now,
                ended_at=now - dt.timedelta(minutes=5),
                volume_infused_ml="9.1",
                vitals_before=NORMAL_VITALS,
                vitals_after=NORMAL_VITALS,
            ),
            administered=_witness(clinician, password, "administered"),
            witnessed=_witness(second_clinician, password),
        )
