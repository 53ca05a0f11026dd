"""An operator's culture day in Chromium: scan a flask, feed it with scanned lots, passage it, see the batch."""

from __future__ import annotations

import pytest

from lims.labels import label_payload
from manufacturing.models import EventKind, Flask, FlaskStatus, ReagentUse
from tests.e2e.conftest import screenshot
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch, vessel


# The fixtures of tests/manufacturing/conftest.py are not visible here, so the arrangement is re-declared.
@pytest.fixture
def media_lots(operator, qa_officer):
    return [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]


@pytest.fixture
def trypsin(operator, qa_officer):
    return released_lot("TrypLE Select", operator, qa_officer)


@pytest.fixture
def flask(study, clinician, operator, password, media_lots):
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    vessel("T175")  # the passage's vessel; transactional tests flush the reference data
    return seeded_flasks(batch, operator, media_lots)[0]


def scan_lot(page, box, lot):
    """A wedge scanner types the payload quickly and ends with Enter."""
    box.click()
    page.keyboard.type(label_payload(lot.code), delay=5)
    page.keyboard.press("Enter")


def test_an_operator_scans_feeds_and_passages_a_flask(page, login, operator, flask, media_lots, trypsin):
    login(operator)
    page.goto("/scan/")
    page.keyboard.type(label_payload(flask.code), delay=5)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{flask.get_absolute_url()}")
    assert page.locator("h1").inner_text().startswith(f"Flask {flask.code}")
    assert "Feed due at" in page.locator("#due").inner_text()
    # The label's symbol is fetched beside the page, with the operator's session, and drawn.
    page.wait_for_function("() => { const qr = document.querySelector('img.qr-symbol'); return qr && qr.complete }")
    assert page.locator("img.qr-symbol").evaluate("qr => qr.naturalWidth") > 0
    screenshot(page, "flask-page")

    page.get_by_role("link", name="Feed", exact=True).click()
    page.wait_for_url("**/feed/")
    lots_box = page.locator("#id_lots")
    for lot in media_lots:
        scan_lot(page, lots_box, lot)
    assert page.url.endswith("/feed/"), "the scanner's Enter starts a new line instead of submitting"
    page.fill("#id_volume_ml", "15")
    screenshot(page, "feed-form")
    page.get_by_role("button", name="Record feed").click()
    page.wait_for_url(f"**{flask.get_absolute_url()}")
    events = page.locator("#events")
    assert "Fed (medium change)" in events.inner_text()
    assert media_lots[0].code in events.inner_text()
    assert media_lots[1].code in events.inner_text()
    feed = flask.events.get(kind=EventKind.FEED)
    assert set(ReagentUse.objects.filter(event=feed).values_list("lot", flat=True)) == {m.pk for m in media_lots}

    page.get_by_role("link", name="Passage", exact=True).click()
    page.wait_for_url("**/passage/")
    scan_lot(page, page.locator("#id_detachment_lot"), trypsin)
    page.fill("#id_total_cells", "4,200,000")
    page.fill("#id_viable_cells", "4,000,000")
    page.fill("#id_children", "2")
    page.select_option("#id_vessel_type", label="T175 (175.0 cm²)")
    page.fill("#id_cells_per_flask", "300,000")
    page.fill("#id_medium_volume_ml", "30")
    screenshot(page, "passage-form")
    page.get_by_role("button", name="Record passage").click()
    page.wait_for_url(f"**{flask.get_absolute_url()}")
    assert "Passaged" in page.locator("h1").inner_text()
    children = list(Flask.objects.filter(parent=flask).order_by("code"))
    assert len(children) == 2
    assert all(child.passage_number == 1 and child.status == FlaskStatus.IN_CULTURE for child in children)
    for child in children:
        assert page.get_by_role("link", name=child.code).first.is_visible()

    page.get_by_role("link", name=flask.batch.lot_number).first.click()
    page.wait_for_url(f"**{flask.batch.get_absolute_url()}")
    curve = page.locator("svg.growth-curve")
    curve.wait_for()
    assert curve.is_visible()
    assert children[0].code in page.locator("#lineage").inner_text()
    screenshot(page, "batch-page")


def test_contamination_quarantines_the_flask_and_a_recall_lists_what_used_the_lot(
    page, login, browser, live_server, operator, qa_officer, flask, media_lots
):
    login(operator)
    page.goto(f"{flask.get_absolute_url()}observe/")
    page.fill("#id_confluence_percent", "40")
    page.get_by_text("Yes, normal").click()
    page.get_by_text("Medium turbid").click()
    page.fill("#id_note", "cloudy medium, fine particles")
    screenshot(page, "observe-form")
    page.get_by_role("button", name="Record observation").click()
    page.wait_for_url(f"**{flask.get_absolute_url()}")
    assert "is now QUARANTINED" in page.locator(".message").inner_text()
    assert "Quarantined" in page.locator("h1").inner_text()
    assert page.get_by_role("link", name="Feed", exact=True).count() == 0, "a quarantined flask cannot be fed"
    screenshot(page, "flask-quarantined")

    page.context.clear_cookies()
    login(qa_officer)
    lot = media_lots[0]
    page.goto(lot.get_absolute_url())
    page.get_by_role("link", name="Recall").click()
    page.fill("#id_reason", "supplier notice: endotoxin above specification")
    page.get_by_role("button", name="Recall lot").click()
    page.wait_for_url(f"**{lot.get_absolute_url()}")
    impact = page.locator("#recall-impact").inner_text()
    assert flask.code in impact
    assert flask.batch.lot_number in impact
    screenshot(page, "lot-recalled")
