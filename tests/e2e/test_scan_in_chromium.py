"""A person at the bench: log in, scan with a wedge scanner, land on the item."""

from __future__ import annotations

from lims.labels import label_payload
from lims.models import ScanAttempt, ScanOutcome
from tests.e2e.conftest import screenshot


def test_a_wedge_scan_opens_the_item_and_a_forged_one_shows_the_error(page, login, operator, subject):
    login(operator)
    page.goto("/scan/")
    box = page.locator("#id_payload")
    assert box.evaluate("el => el === document.activeElement"), "the scan box has the focus"
    screenshot(page, "scan-page")

    # A wedge scanner types fast and ends with Enter.
    page.keyboard.type(label_payload(f"WB-{subject.code}"), delay=5)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{subject.get_absolute_url()}")
    assert page.locator("h1").inner_text() == f"Subject {subject.code}"
    screenshot(page, "subject-page")

    page.goto("/scan/")
    forged = label_payload(f"WB-{subject.code}")[:-2] + "ZZ"
    page.keyboard.type(forged, delay=5)
    page.keyboard.press("Enter")
    error = page.locator("#scan-error")
    error.wait_for()
    assert "does not verify" in error.inner_text()
    screenshot(page, "scan-forged")
    outcomes = list(ScanAttempt.objects.order_by("scanned_at").values_list("outcome", flat=True))
    assert outcomes == [ScanOutcome.OPENED, ScanOutcome.FORGED]


def test_a_double_trigger_of_the_scanner_submits_once(page, login, operator, subject):
    login(operator)
    page.goto("/scan/")
    payload = label_payload(f"WB-{subject.code}")
    page.keyboard.type(payload, delay=2)
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{subject.get_absolute_url()}")
    assert ScanAttempt.objects.count() == 1
