"""The clinic and the cleanroom door: enrol a subject, sign eligibility, collect and receive the aspirate,
and enter the follow-up result, in Chromium. Screenshots feed docs/clinic-guide.md."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from lims.labels import label_payload
from samples.models import Aspirate, AspirateStatus, Subject, SubjectStatus
from tests.e2e.conftest import screenshot


def _local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _submit(page) -> None:
    page.locator("main form button[type=submit]").first.click()


def test_a_clinician_enrols_a_subject_and_the_cleanroom_receives_the_aspirate(
    page, login, clinician, operator, study, password
):
    login(clinician)
    page.goto(f"/samples/studies/{study.code}/subjects/new/")
    page.check("input[name=sex][value=F]")
    page.fill("#id_date_of_birth", "1980-04-02")
    page.fill("#id_screening_date", timezone.localdate().isoformat())
    page.fill("#id_consent_date", timezone.localdate().isoformat())
    screenshot(page, "clinic-register-subject")
    _submit(page)
    subject = Subject.objects.get()
    page.wait_for_url(f"**{subject.get_absolute_url()}")

    page.goto(f"/samples/subjects/{subject.code}/eligibility/")
    for criterion in subject.protocol.criteria.all():
        page.check(f"input[name=criterion_{criterion.pk}][value={'yes' if criterion.kind == 'inclusion' else 'no'}]")
    screenshot(page, "clinic-eligibility-checklist")
    _submit(page)
    page.wait_for_url(f"**{subject.get_absolute_url()}")

    page.goto(f"/samples/subjects/{subject.code}/eligibility/confirm/")
    page.fill("#id_username", clinician.username)
    page.fill("#id_password", password)
    page.fill("#id_reason", "checklist reviewed with the subject's records")
    screenshot(page, "clinic-eligibility-signature")
    _submit(page)
    page.wait_for_url(f"**{subject.get_absolute_url()}")
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.ENROLLED
    screenshot(page, "clinic-subject-enrolled")

    collected = timezone.now() - dt.timedelta(hours=2)
    page.goto(f"/samples/subjects/{subject.code}/aspirates/new/")
    page.fill("#id_collected_at", _local(collected))
    page.fill("#id_volume_ml", "18.5")
    _submit(page)
    aspirate = Aspirate.objects.get()
    page.wait_for_url(f"**{aspirate.get_absolute_url()}")
    page.goto(f"/samples/aspirates/{aspirate.code}/dispatch/")
    page.fill("#id_courier", "Hamid (courier)")
    page.fill("#id_temperature_c", "21")
    page.fill("#id_dispatched_at", _local(collected + dt.timedelta(minutes=15)))
    _submit(page)
    page.wait_for_url(f"**{aspirate.get_absolute_url()}")
    screenshot(page, "clinic-aspirate-in-transit")

    page.click("text=Log out")
    login(operator)
    page.goto("/samples/receive/")
    page.click("#id_payload")  # the scanner types into the focused box; make sure it has the focus
    page.keyboard.type(label_payload(aspirate.code), delay=5)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/samples/aspirates/{aspirate.code}/receive/**")
    page.fill("#id_received_at", _local(timezone.now() - dt.timedelta(minutes=5)))
    page.fill("#id_temperature_c", "20.5")
    page.check("input[name=container_intact][value=yes]")
    page.fill("#id_courier", "Hamid (courier)")
    screenshot(page, "cleanroom-receipt")
    _submit(page)
    page.wait_for_url(f"**{aspirate.get_absolute_url()}")
    aspirate.refresh_from_db()
    assert aspirate.status == AspirateStatus.ACCEPTED
    screenshot(page, "cleanroom-aspirate-accepted")


def test_the_endpoint_page_shows_the_paired_plot(page, login, clinician, study, password):
    from decimal import Decimal

    from samples.services import assay_result_record, follow_up_sample_collect
    from tests.samples.helpers import enrolled_subject

    subject = enrolled_subject(study, clinician, password)
    treg = subject.protocol.analytes.get(primary=True)
    for month, value in ((0, "4.2"), (6, "6.3")):
        sample = follow_up_sample_collect(
            subject=subject,
            visit=subject.protocol.visits.get(month=month),
            acting_user=clinician,
            collected_at=timezone.now() - dt.timedelta(days=200 - month * 30),
        )
        assay_result_record(sample=sample, analyte=treg, value=Decimal(value), acting_user=clinician)
    login(clinician)
    page.goto(f"/samples/studies/{study.code}/endpoint/")
    assert page.locator("svg").first.is_visible()
    assert "+50.0" in page.content()
    screenshot(page, "clinic-endpoint")
