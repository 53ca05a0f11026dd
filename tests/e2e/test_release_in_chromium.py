"""QA's release in Chromium: open the batch in the admin, review it, sign the release, download the CoA."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from lims.roles import QA
from manufacturing.models import BatchStatus
from manufacturing.release_admin import BatchReleaseAdminMixin
from manufacturing.services.release import batch_start_release_testing
from tests.e2e.conftest import screenshot
from tests.factories import UserFactory
from tests.manufacturing.helpers import (
    accepted_aspirate,
    approved_specification,
    enter_passing_results,
    harvested_batch,
    released_lot,
    started_batch,
)


def _admin_wired() -> bool:
    from manufacturing import admin as manufacturing_admin

    batch_admin = getattr(manufacturing_admin, "BatchAdmin", None)
    return isinstance(batch_admin, type) and issubclass(batch_admin, BatchReleaseAdminMixin)


pytestmark = pytest.mark.skipif(
    not _admin_wired(),
    reason="manufacturing.admin.BatchAdmin does not inherit manufacturing.release_admin.BatchReleaseAdminMixin yet, "
    "so the admin has no release review to drive",
)


# The fixtures of tests/manufacturing/conftest.py are not visible here, so the arrangement is re-declared.
@pytest.fixture
def media_lots(operator, qa_officer):
    return [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]


@pytest.fixture
def reviewer(db):
    """A second QA officer, who took no part in making the batch, with access to the admin."""
    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA, is_staff=True)


@pytest.fixture
def batch_in_testing(study, clinician, operator, qa_officer, password, media_lots):
    """Harvested, in release testing against the approved specification, every result passing, nothing open."""
    approved_specification(study, qa_officer, password)
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    harvested_batch(batch, operator, media_lots)
    batch = batch_start_release_testing(batch=batch, acting_user=operator)
    enter_passing_results(batch, operator)
    return batch


def pdf_text(pdf: bytes) -> str:
    raw = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(re.sub(r"-[ \t]*\n\s*", "-", raw).split())


def test_qa_reviews_signs_the_release_and_downloads_the_certificate(page, reviewer, password, batch_in_testing):
    batch = batch_in_testing
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", reviewer.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto("/admin/manufacturing/batch/")
    page.get_by_role("link", name=batch.lot_number, exact=True).click()
    page.wait_for_url(f"**/admin/manufacturing/batch/{batch.pk}/change/")
    page.locator("#release-review-link").click()
    page.wait_for_url("**/release-review/")
    assert "No blocker" in page.locator("#blockers").inner_text()
    results = page.locator("#results").inner_text()
    assert "CD73" in results
    assert "PASS" in results
    assert "Olivia Operator" in page.locator("#actors").inner_text()
    screenshot(page, "release-review")

    page.locator("#decide-released").click()
    page.wait_for_url("**/decide/released/")
    assert page.locator("#signature-meaning").inner_text() == "Released"
    assert page.input_value("#id_username") == reviewer.username
    page.fill("#id_password", password)
    page.fill("#id_reason", "all criteria met, no deviation open, audit trail reviewed")
    screenshot(page, "release-sign")
    page.locator("#sign-button").click()
    page.wait_for_url(f"**/admin/manufacturing/batch/{batch.pk}/change/")
    assert "Released by QA" in page.content()
    assert "Signed “released” by Quentin Second" in page.locator(".messagelist").inner_text()
    screenshot(page, "batch-released")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RELEASED

    page.locator("#release-review-link").click()
    page.wait_for_url("**/release-review/")
    certificate = page.context.request.get(page.locator("#certificate-link").get_attribute("href"))
    assert certificate.ok
    assert certificate.headers["content-type"] == "application/pdf"
    text = pdf_text(certificate.body())
    for expected in (
        "Certificate of Analysis",
        "FOR AUTOLOGOUS USE ONLY",
        batch.lot_number,
        batch.subject.code,
        "98.5 %",
        "<0.05 EU/mL",
        "PASS",
        "AT DOSE TIME",
        "Released by QA",
        "Quentin Second",
        "all criteria met, no deviation open, audit trail reviewed",
        "UTC",
        "intact",
    ):
        assert expected in text, expected
    assert "The record changed after it was signed" not in text
