"""From the cleanroom to the patient in Chromium: issue, ward receipt by scanning, bedside check, infusion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from lims.labels import label_payload
from lims.roles import CLINICIAN, QA
from lims.signatures import SignatureRequest
from manufacturing.models import BedsideCheck, ProductStatus
from manufacturing.services.infusion import dose_calculate, dose_verify, product_formulate
from samples.services import subject_register
from tests.e2e.conftest import screenshot
from tests.factories import UserFactory, restore_reference_data, subject_dates
from tests.manufacturing.helpers import released_batch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_clinician(db):
    return UserFactory(username="colin", first_name="Colin", last_name="Clinician", role=CLINICIAN)


@pytest.fixture
def product(study, clinician, operator, qa_officer, second_clinician, password):
    second_qa = UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA)
    batch = released_batch(study, clinician, operator, qa_officer, second_qa, password)
    product = product_formulate(batch=batch, acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
    dose = dose_calculate(
        product=product,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    dose_verify(
        dose=dose,
        acting_user=second_clinician,
        signature=SignatureRequest(
            username=second_clinician.username, password=password, meaning="verified", reason="calculation checked"
        ),
    )
    return product


def scan(page, selector, code):
    page.click(selector)
    page.keyboard.type(label_payload(code), delay=5)
    page.keyboard.press("Enter")


def bedside(page, wristband, bag, second_clinician, password):
    page.goto("/product/bedside/")
    assert page.evaluate("document.activeElement.id") == "id_wristband"
    page.keyboard.type(label_payload(wristband), delay=5)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "id_bag"
    page.keyboard.type(label_payload(bag), delay=5)
    page.keyboard.press("Enter")
    page.fill("#id_username", second_clinician.username)
    page.fill("#id_password", password)


@pytest.mark.requirement("FACTJACIE.BEDSIDE", "CFR1271.290")
def test_issue_receive_check_at_the_bedside_and_infuse(
    page, login, operator, clinician, second_clinician, password, product, study
):
    login(operator)
    page.goto(f"/product/{product.code}/")
    assert "FOR AUTOLOGOUS USE ONLY" in page.inner_text("#statement")
    screenshot(page, "product-page")
    page.click("#issue-link")
    page.fill("#id_courier", "Hamid")
    page.fill("#id_temperature_c", "5")
    page.click("#submit-button")
    page.wait_for_url(f"**/product/{product.code}/")
    assert "Issued" in page.inner_text("#product-status")

    page.context.clear_cookies()
    login(clinician)
    page.goto(f"/product/{product.code}/receive/")
    page.keyboard.type(label_payload(product.code), delay=5)
    page.fill("#id_courier", "Hamid")
    page.fill("#id_temperature_c", "5")
    page.fill("#id_ward", "Rheumatology ward")
    page.click("#submit-button")
    page.wait_for_url(f"**/product/{product.code}/")
    assert "Received at the ward" in page.inner_text("#product-status")

    other = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    bedside(page, f"WB-{other.code}", product.code, second_clinician, password)
    page.click("#submit-button")
    assert "HARD STOP — DO NOT INFUSE" in page.inner_text("#hard-stop")
    assert "WRONG PATIENT" in page.inner_text("#findings")
    screenshot(page, "bedside-hard-stop")
    assert BedsideCheck.objects.filter(passed=False).count() == 1

    bedside(page, f"WB-{product.batch.subject.code}", product.code, second_clinician, password)
    screenshot(page, "bedside-check")
    page.click("#submit-button")
    page.wait_for_url("**/product/infusions/*/")

    now = timezone.localtime()
    page.fill("#id_started_at", (now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_ended_at", now.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_volume_infused_ml", "9.1")
    vitals = {"heart_rate_bpm": "72", "systolic_mmhg": "124", "diastolic_mmhg": "78"}
    vitals |= {"temperature_c": "36.8", "spo2_percent": "98", "respiratory_rate": "14"}
    for when in ("before", "after"):
        for name, value in vitals.items():
            page.fill(f"#id_{name}_{when}", value)
    page.fill("#id_password", password)
    page.fill("#id_witness_username", second_clinician.username)
    page.fill("#id_witness_password", password)
    page.evaluate("window.scrollTo(0, 0)")
    page.click("#submit-button")
    page.wait_for_url(f"**/product/{product.code}/")
    assert page.inner_text("#product-status") == "Infused"
    screenshot(page, "infusion-recorded")
    product.refresh_from_db()
    assert product.status == ProductStatus.INFUSED

    page.click("#timeline-link")
    page.wait_for_url(f"**/product/subjects/{product.batch.subject.code}/timeline/")
    table = page.inner_text("#timeline-table")
    for step in ("collected", "Released by QA", "Dose verified", "HARD STOP at the bedside", "Infusion ended"):
        assert step in table
    assert page.locator("#timeline-plot svg .alert-mark").count() == 1


@pytest.mark.requirement("CFR1271.290")
def test_the_clinician_reads_the_demo_subjects_timeline(page, settings):
    from django.core.management import call_command

    from lims.management.commands.load_demo import DEMO_PASSWORD
    from manufacturing.models import FinalProduct

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    restore_reference_data()
    call_command("load_demo", verbosity=0)
    subject = FinalProduct.objects.get(status=ProductStatus.INFUSED).batch.subject
    page.goto("/accounts/login/")
    page.fill("#id_username", "clara")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto(f"/samples/subjects/{subject.code}/")
    page.click("#timeline-link")
    page.wait_for_url(f"**/product/subjects/{subject.code}/timeline/")
    assert "Infusion ended" in page.inner_text("#timeline-table")
    assert "days since" in page.inner_text("#timeline-plot")
    screenshot(page, "subject-timeline")
