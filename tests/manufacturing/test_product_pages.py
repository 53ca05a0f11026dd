"""Product pages: formulate, dose, verify, issue, receive, the bedside check and the infusion record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from lims.labels import label_payload
from manufacturing.models import BedsideCheck, DoseCalculation, DoseStatus, FinalProduct, Infusion, ProductStatus
from manufacturing.services.infusion import dose_calculate
from tests.manufacturing.helpers import NORMAL_VITALS


def _bedside_post(product, second, password, *, wristband=None):
    return {
        "wristband": wristband or label_payload(f"WB-{product.batch.subject.code}"),
        "bag": label_payload(product.code),
        "username": second.username,
        "password": password,
    }


def _infusion_post(second, password, *, start_minutes=30, end_minutes=5):
    now = timezone.localtime()
    data = {
        "started_at": (now - dt.timedelta(minutes=start_minutes)).strftime("%Y-%m-%dT%H:%M"),
        "ended_at": (now - dt.timedelta(minutes=end_minutes)).strftime("%Y-%m-%dT%H:%M"),
        "volume_infused_ml": "9.1",
        "password": password,
        "witness_username": second.username,
        "witness_password": password,
    }
    for when in ("before", "after"):
        data.update({f"{name}_{when}": value for name, value in NORMAL_VITALS.items()})
    return data


# Formulation


def test_an_operator_formulates_the_product_of_a_released_batch(client, operator, released):
    client.force_login(operator)
    url = reverse("product:formulate", args=[released.lot_number])
    assert client.get(url).status_code == 200
    response = client.post(url, {"total_viable_cells_million": "44", "volume_ml": "10"})
    product = FinalProduct.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("product:detail", args=[product.code])
    assert product.total_viable_cells == 44_000_000


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_cannot_formulate(client, outsider, released):
    client.force_login(outsider)
    url = reverse("product:formulate", args=[released.lot_number])
    assert client.post(url, {"total_viable_cells_million": "44", "volume_ml": "10"}).status_code == 403
    assert not FinalProduct.objects.exists()


@pytest.mark.requirement("ANNEX11.12")
def test_anonymous_is_sent_to_log_in(client, released):
    response = client.get(reverse("product:formulate", args=[released.lot_number]))
    assert response.status_code == 302
    assert "/accounts/login/" in response.url


# The product page


@pytest.mark.requirement("CFR1271.290")
def test_the_product_page_shows_the_bag_without_the_subject_name(client, clinician, at_ward):
    client.force_login(clinician)
    response = client.get(reverse("product:detail", args=[at_ward.code]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "FOR AUTOLOGOUS USE ONLY" in body
    assert at_ward.batch.subject.code in body
    assert "Received at the ward" in body
    assert "Verified by a second person" in body
    assert "4.4" in body  # ×10⁶/mL


# Dose


def test_a_clinician_calculates_a_dose(client, clinician, formulated):
    client.force_login(clinician)
    url = reverse("product:dose", args=[formulated.code])
    data = {"weight_kg": "40", "weight_measured_on": timezone.localdate().isoformat(), "target_million_per_kg": "1.0"}
    assert client.post(url, data).status_code == 302
    assert DoseCalculation.objects.get().status == DoseStatus.CALCULATED


@pytest.mark.parametrize(("weight", "target"), [("500", "1.0"), ("40", "2.5")])
def test_a_refused_dose_shows_the_reason_and_writes_nothing(client, clinician, formulated, weight, target):
    client.force_login(clinician)
    url = reverse("product:dose", args=[formulated.code])
    data = {
        "weight_kg": weight,
        "weight_measured_on": timezone.localdate().isoformat(),
        "target_million_per_kg": target,
    }
    response = client.post(url, data)
    assert response.status_code == 400
    assert 'id="form-error"' in response.content.decode()
    assert not DoseCalculation.objects.exists()


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_cannot_calculate_a_dose(client, outsider, formulated):
    client.force_login(outsider)
    url = reverse("product:dose", args=[formulated.code])
    data = {"weight_kg": "40", "weight_measured_on": timezone.localdate().isoformat(), "target_million_per_kg": "1"}
    assert client.post(url, data).status_code == 403
    assert not DoseCalculation.objects.exists()


@pytest.fixture
def calculated(formulated, clinician):
    return dose_calculate(
        product=formulated,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )


def test_a_second_clinician_verifies_the_dose(client, second_clinician, calculated, password):
    client.force_login(second_clinician)
    url = reverse("product:dose-verify", args=[calculated.pk])
    data = {"username": second_clinician.username, "password": password, "reason": "checked"}
    assert client.post(url, data).status_code == 302
    calculated.refresh_from_db()
    assert calculated.status == DoseStatus.VERIFIED


@pytest.mark.requirement("CFR11.10g")
def test_the_calculator_cannot_verify_their_own_dose(client, clinician, calculated, password):
    client.force_login(clinician)
    url = reverse("product:dose-verify", args=[calculated.pk])
    response = client.post(url, {"username": clinician.username, "password": password, "reason": "checked"})
    assert response.status_code == 400
    assert "cannot also verify" in response.content.decode()
    calculated.refresh_from_db()
    assert calculated.status == DoseStatus.CALCULATED


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_cannot_verify(client, outsider, calculated, password):
    client.force_login(outsider)
    url = reverse("product:dose-verify", args=[calculated.pk])
    assert client.post(url, {"username": "x", "password": password, "reason": "x"}).status_code == 403


# Custody


@pytest.mark.requirement("CFR1271.290", "CFR11.10h")
def test_an_operator_issues_and_a_clinician_receives_by_scanning(client, operator, clinician, formulated):
    client.force_login(operator)
    assert (
        client.post(
            reverse("product:issue", args=[formulated.code]), {"courier": "Hamid", "temperature_c": "5"}
        ).status_code
        == 302
    )
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.ISSUED
    client.force_login(clinician)
    data = {"scanned": label_payload(formulated.code), "courier": "Hamid", "temperature_c": "5", "ward": "Ward 3"}
    assert client.post(reverse("product:receive", args=[formulated.code]), data).status_code == 302
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.AT_WARD


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_cannot_issue_or_receive(client, outsider, formulated):
    client.force_login(outsider)
    assert (
        client.post(
            reverse("product:issue", args=[formulated.code]), {"courier": "H", "temperature_c": "5"}
        ).status_code
        == 403
    )
    assert client.get(reverse("product:receive", args=[formulated.code])).status_code == 403
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.FORMULATED


@pytest.mark.requirement("CFR11.10f")
def test_receiving_a_product_not_yet_issued_is_refused(client, clinician, formulated):
    client.force_login(clinician)
    data = {"scanned": label_payload(formulated.code), "courier": "Hamid", "temperature_c": "5", "ward": "Ward 3"}
    response = client.post(reverse("product:receive", args=[formulated.code]), data)
    assert response.status_code == 400
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.FORMULATED


# Bedside and infusion


@pytest.mark.requirement("FACTJACIE.BEDSIDE")
def test_two_clinicians_pass_the_bedside_check_and_record_the_infusion(
    client, clinician, second_clinician, password, at_ward, time_machine
):
    client.force_login(clinician)
    assert client.get(reverse("product:bedside")).status_code == 200
    response = client.post(reverse("product:bedside"), _bedside_post(at_ward, second_clinician, password))
    infusion = Infusion.objects.get()
    assert response.url == reverse("product:infusion", args=[infusion.pk])
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=40))
    client.force_login(clinician)  # the idle session timed out meanwhile
    response = client.post(reverse("product:infusion", args=[infusion.pk]), _infusion_post(second_clinician, password))
    assert response.url == reverse("product:detail", args=[at_ward.code])
    at_ward.refresh_from_db()
    assert at_ward.status == ProductStatus.INFUSED


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR11.10h")
def test_a_wristband_of_another_subject_is_a_full_screen_hard_stop(
    client, clinician, second_clinician, password, at_ward, study
):
    from samples.services import subject_register
    from tests.factories import subject_dates

    other = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    client.force_login(clinician)
    data = _bedside_post(at_ward, second_clinician, password, wristband=label_payload(f"WB-{other.code}"))
    response = client.post(reverse("product:bedside"), data)
    body = response.content.decode()
    assert response.status_code == 400
    assert "HARD STOP — DO NOT INFUSE" in body
    assert "WRONG PATIENT" in body
    assert BedsideCheck.objects.get().passed is False
    assert not Infusion.objects.exists()


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
def test_an_outsider_cannot_do_the_bedside_check(client, outsider, second_clinician, password, at_ward):
    client.force_login(outsider)
    assert (
        client.post(reverse("product:bedside"), _bedside_post(at_ward, second_clinician, password)).status_code == 403
    )
    assert not BedsideCheck.objects.exists()


@pytest.mark.requirement("ANNEX11.12")
def test_anonymous_bedside_is_sent_to_log_in(client):
    response = client.get(reverse("product:bedside"))
    assert response.status_code == 302
    assert "/accounts/login/" in response.url


@pytest.fixture
def checked(client, clinician, second_clinician, password, at_ward):
    client.force_login(clinician)
    client.post(reverse("product:bedside"), _bedside_post(at_ward, second_clinician, password))
    return Infusion.objects.get()


def test_an_infusion_ending_before_it_started_is_refused(
    client, checked, clinician, second_clinician, password, time_machine
):
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=40))
    client.force_login(clinician)
    data = _infusion_post(second_clinician, password, start_minutes=5, end_minutes=30)
    response = client.post(reverse("product:infusion", args=[checked.pk]), data)
    assert response.status_code == 400
    assert "cannot end before it started" in response.content.decode()
    checked.refresh_from_db()
    assert checked.started_at is None


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_cannot_record_the_infusion(client, outsider, checked, second_clinician, password):
    client.force_login(outsider)
    response = client.post(reverse("product:infusion", args=[checked.pk]), _infusion_post(second_clinician, password))
    assert response.status_code == 403
    checked.refresh_from_db()
    assert checked.started_at is None
