"""The cleanroom pages: each step by the right role, refused for others, refusals shown and nothing written."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from lims.labels import label_payload
from lims.models import Deviation, Label, ScanAttempt, ScanOutcome
from manufacturing.models import (
    Batch,
    BatchStatus,
    CultureEvent,
    EventKind,
    Flask,
    FlaskStatus,
    Harvest,
    LotStatus,
    ReagentLot,
    ReagentUse,
)
from manufacturing.services.culture import Observation as ObservationData
from manufacturing.services.culture import batch_start, flask_feed, flask_observe
from manufacturing.services.lots import reagent_lot_recall, reagent_lot_receive
from tests.manufacturing.helpers import accepted_aspirate, reagent, seeded_flasks, vessel


def scans(*lots: ReagentLot) -> str:
    """What a wedge scanner leaves in a lot box: one payload per line."""
    return "\r\n".join(label_payload(lot.code) for lot in lots) + "\r\n"


def token() -> str:
    return uuid.uuid4().hex


def counts() -> tuple[int, int, int, int]:
    return (Batch.objects.count(), Flask.objects.count(), CultureEvent.objects.count(), ReagentUse.objects.count())


def body(response) -> str:
    return response.content.decode()


@pytest.fixture
def aspirate(study, clinician, operator, password):
    return accepted_aspirate(study, clinician, operator, password)


@pytest.fixture
def passage_vessel(db):
    return vessel("T175")


def feed_data(lots, **extra):
    return {"lots": scans(*lots), "volume_ml": "15", "client_token": token(), **extra}


def passage_data(trypsin, passage_vessel, **extra):
    return {
        "detachment_lot": scans(trypsin),
        "media_lots": "",
        "total_cells": "4,200,000",
        "viable_cells": "4 000 000",
        "children": "2",
        "vessel_type": passage_vessel.pk,
        "cells_per_flask": "300000",
        "medium_volume_ml": "30",
        "density_reason": "",
        "client_token": token(),
        **extra,
    }


# --- who may open the pages ---------------------------------------------------------------------


def _state_changing_urls(batch, flask, lot, aspirate_code):
    return [
        reverse("manufacturing:batch-start", args=[aspirate_code]),
        reverse("manufacturing:batch-seed", args=[batch.lot_number]),
        reverse("manufacturing:batch-harvest", args=[batch.lot_number]),
        reverse("manufacturing:flask-feed", args=[flask.code]),
        reverse("manufacturing:flask-observe", args=[flask.code]),
        reverse("manufacturing:flask-passage", args=[flask.code]),
        reverse("manufacturing:flask-discard", args=[flask.code]),
        reverse("manufacturing:lot-receive"),
        reverse("manufacturing:lot-release", args=[lot.code]),
        reverse("manufacturing:lot-recall", args=[lot.code]),
    ]


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
def test_an_outsider_is_refused_every_step_and_nothing_changes(client, outsider, batch, flask, media_lots):
    client.force_login(outsider)
    before = counts(), ReagentLot.objects.count(), media_lots[0].status
    for url in _state_changing_urls(batch, flask, media_lots[0], batch.aspirate.code):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"reason": "x", "client_token": token()}).status_code == 403, url
    for url in (
        reverse("manufacturing:batch-list"),
        reverse("manufacturing:batch-detail", args=[batch.lot_number]),
        reverse("manufacturing:flask-detail", args=[flask.code]),
        reverse("manufacturing:lot-list"),
        reverse("manufacturing:lot-detail", args=[media_lots[0].code]),
    ):
        assert client.get(url).status_code == 403, url
    media_lots[0].refresh_from_db()
    assert (counts(), ReagentLot.objects.count(), media_lots[0].status) == before


@pytest.mark.requirement("ANNEX11.12")
def test_anonymous_visitors_are_sent_to_the_login_page(client, batch, flask, media_lots):
    login = reverse("login")
    for url in _state_changing_urls(batch, flask, media_lots[0], batch.aspirate.code):
        response = client.post(url, {"reason": "x"})
        assert response.status_code == 302, url
        assert response["Location"].startswith(login), url
    assert client.get(reverse("manufacturing:batch-list"))["Location"].startswith(login)


@pytest.mark.requirement("CFR11.10g")
def test_qa_may_not_record_culture_steps_and_an_operator_may_not_release_lots(
    client, qa_officer, operator, flask, media_lots
):
    client.force_login(qa_officer)
    assert client.post(reverse("manufacturing:flask-feed", args=[flask.code]), feed_data(media_lots)).status_code == 403
    client.force_login(operator)
    url = reverse("manufacturing:lot-release", args=[media_lots[0].code])
    assert client.post(url, {"reason": "looks fine"}).status_code == 403


# --- batches ------------------------------------------------------------------------------------


def test_the_operator_starts_a_batch_from_an_accepted_aspirate(client, operator, aspirate):
    client.force_login(operator)
    url = reverse("manufacturing:batch-start", args=[aspirate.code])
    assert "Start a batch from aspirate" in body(client.get(url))
    response = client.post(url, {"mnc_total_cells": "60,000,000", "mnc_viability_percent": "92.5"})
    batch = Batch.objects.get(aspirate=aspirate)
    assert response.status_code == 302
    assert response["Location"] == batch.get_absolute_url()
    assert (batch.mnc_total_cells, batch.mnc_viability_percent) == (60_000_000, Decimal("92.5"))
    assert batch.history.get().history_user == operator
    page = body(client.get(response["Location"]))
    assert f"Batch {batch.lot_number} started" in page
    assert "60.00 ×10⁶ cells" in page


def test_a_refused_batch_start_shows_the_services_message_and_writes_nothing(client, operator, aspirate):
    client.force_login(operator)
    url = reverse("manufacturing:batch-start", args=[aspirate.code])
    response = client.post(url, {"mnc_total_cells": "60000000", "mnc_viability_percent": "120"})
    assert response.status_code == 400
    assert "MNC viability must be between 0 and 100 %, not 120 %." in body(response)
    assert Batch.objects.count() == 0


def test_scanning_the_aspirate_tube_opens_its_batch_start(client, operator, aspirate, flask):
    client.force_login(operator)
    url = reverse("manufacturing:batch-start-scan")
    response = client.post(url, {"payload": label_payload(aspirate.code)})
    assert response["Location"] == reverse("manufacturing:batch-start", args=[aspirate.code])
    response = client.post(url, {"payload": label_payload(flask.code)})
    assert response.status_code == 400
    assert f"{flask.code} is not an aspirate tube" in body(response)


def test_the_operator_seeds_p0_with_scanned_lots(client, operator, batch, media_lots):
    client.force_login(operator)
    url = reverse("manufacturing:batch-seed", args=[batch.lot_number])
    data = {
        "flask_count": "2",
        "vessel_type": vessel("T75").pk,
        "cells_per_flask": "11 250 000",
        "medium_volume_ml": "15",
        "lots": scans(*media_lots),
    }
    response = client.post(url, data)
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == BatchStatus.IN_CULTURE
    flasks = list(batch.flasks.all())
    assert [f.cells_seeded for f in flasks] == [11_250_000, 11_250_000]
    seed = flasks[0].events.get()
    assert {u.lot for u in seed.reagent_uses.all()} == set(media_lots)
    assert seed.history.get().history_user == operator


def test_a_density_outside_the_protocol_asks_for_the_reason_and_then_seeds(client, operator, batch, media_lots):
    client.force_login(operator)
    url = reverse("manufacturing:batch-seed", args=[batch.lot_number])
    data = {
        "flask_count": "1",
        "vessel_type": vessel("T75").pk,
        "cells_per_flask": "3000000",
        "medium_volume_ml": "15",
        "lots": scans(*media_lots),
    }
    assert 'id="density-reason" class="acknowledge" hidden' in body(client.get(url))
    refused = client.post(url, data)
    assert refused.status_code == 400
    page = body(refused)
    assert "Seeding density 40,000 cells/cm² is outside the protocol&#x27;s 100,000–200,000 cells/cm²" in page
    assert 'id="density-reason" class="acknowledge">' in page, "the reason box is now shown"
    assert Flask.objects.count() == 0
    response = client.post(url, {**data, "density_reason": "low MNC yield; PI agreed"})
    assert response.status_code == 302
    assert Flask.objects.get().density_warning_reason == "low MNC yield; PI agreed"


def test_a_quarantined_lot_is_refused_at_seeding_and_a_released_one_is_named(
    client, operator, batch, media_lots, qa_officer
):
    waiting = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="WAITING-1",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    client.force_login(operator)
    url = reverse("manufacturing:batch-seed", args=[batch.lot_number])
    data = {
        "flask_count": "2",
        "vessel_type": vessel("T75").pk,
        "cells_per_flask": "11250000",
        "medium_volume_ml": "15",
        "lots": scans(waiting, media_lots[1]),
    }
    response = client.post(url, data)
    assert response.status_code == 400
    assert "still in quarantine" in body(response)
    assert f"Use {media_lots[0].code}" in body(response)
    assert counts() == (1, 0, 0, 0)


@pytest.mark.requirement("CFR1271.290")
def test_the_batch_page_shows_lineage_timeline_and_growth_curve(
    client, operator, batch, flask, trypsin, media_lots, passage_vessel
):
    client.force_login(operator)
    flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)
    client.post(reverse("manufacturing:flask-passage", args=[flask.code]), passage_data(trypsin, passage_vessel))
    response = client.get(reverse("manufacturing:batch-detail", args=[batch.lot_number]))
    page = body(response)
    assert response.status_code == 200
    assert "Day 0" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert 'class="growth-curve"' in page
    assert f'<title id="growth-title">Growth of batch {batch.lot_number}</title>' in page
    assert "Fed (medium change)" in page
    assert "Passaged" in page
    assert trypsin.code in page
    children = list(Flask.objects.filter(parent=flask))
    assert len(children) == 2
    lineage = page.split('id="lineage"')[1].split("</section>")[0]
    assert lineage.index(flask.code) < lineage.index(children[0].code), "children are nested under the parent"
    assert lineage.count('<ul class="lineage">') == 2  # the roots, then the children of the passaged flask


@pytest.mark.requirement("CFR1271.290")
def test_the_flask_label_sheet_prints_every_flask_of_the_batch(client, operator, batch, flasks):
    client.force_login(operator)
    response = client.get(reverse("manufacturing:batch-labels", args=[batch.lot_number]))
    assert response["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    for flask in flasks:
        assert flask.code in text


def test_the_operator_harvests_the_batch(client, operator, batch, flasks):
    client.force_login(operator)
    url = reverse("manufacturing:batch-harvest", args=[batch.lot_number])
    response = client.post(url, {"viable_cells": "12,000,000", "viability_percent": "94", "volume_ml": "20"})
    assert response.status_code == 302
    harvest = Harvest.objects.get(batch=batch)
    assert harvest.history.get().history_user == operator
    assert set(batch.flasks.values_list("status", flat=True)) == {FlaskStatus.HARVESTED}
    assert "12.00 ×10⁶ cells" in body(client.get(batch.get_absolute_url()))


def test_a_harvest_with_a_quarantined_flask_is_refused_and_writes_nothing(client, operator, batch, flasks):
    flask_observe(
        flask=flasks[0],
        acting_user=operator,
        observation=ObservationData(confluence_percent=50, morphology_ok=True, turbidity=True),
    )
    client.force_login(operator)
    before = counts()
    url = reverse("manufacturing:batch-harvest", args=[batch.lot_number])
    response = client.post(url, {"viable_cells": "40000000", "viability_percent": "94", "volume_ml": "20"})
    assert response.status_code == 400
    assert f"Flask(s) {flasks[0].code} are quarantined" in body(response)
    assert (counts(), Harvest.objects.count()) == (before, 0)


# --- the flask page and its events --------------------------------------------------------------------


def test_scanning_a_flask_opens_its_page_with_what_is_due(client, operator, flask):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": label_payload(flask.code)})
    assert response["Location"] == reverse("manufacturing:flask-detail", args=[flask.code])
    page = body(client.get(response["Location"]))
    assert f"Flask {flask.code}" in page
    assert "Feed</strong> due at" in page
    for action in ("feed", "observe", "passage", "discard"):
        assert reverse(f"manufacturing:flask-{action}", args=[flask.code]) in page
    assert f'src="{reverse("label-qr", args=[flask.code])}?v=' in page, "the label's QR is shown"


def test_an_overdue_feed_says_so_in_words(client, operator, flask, time_machine):
    time_machine.move_to(timezone.now() + dt.timedelta(days=4))
    client.force_login(operator)
    page = body(client.get(reverse("manufacturing:flask-detail", args=[flask.code])))
    assert "OVERDUE</strong> <strong>Feed</strong> since" in page


def test_the_operator_feeds_a_flask_with_scanned_lots(client, operator, flask, media_lots):
    client.force_login(operator)
    url = reverse("manufacturing:flask-feed", args=[flask.code])
    form_page = body(client.get(url))
    assert 'name="client_token"' in form_page
    assert "Scan each lot used" in form_page
    response = client.post(url, feed_data(media_lots))
    assert response["Location"] == flask.get_absolute_url()
    event = flask.events.get(kind=EventKind.FEED)
    assert {u.lot for u in event.reagent_uses.all()} == set(media_lots)
    assert event.history.get().history_user == operator
    page = body(client.get(response["Location"]))
    assert "Feed of" in page
    assert "15.0 mL fresh medium" in page
    assert media_lots[0].code in page


def test_a_double_submitted_feed_records_once(client, operator, flask, media_lots):
    client.force_login(operator)
    url = reverse("manufacturing:flask-feed", args=[flask.code])
    data = feed_data(media_lots)
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert flask.events.filter(kind=EventKind.FEED).count() == 1


@pytest.mark.requirement("CFR11.10h")
def test_a_forged_line_and_a_flask_label_are_refused_by_their_line_number(client, operator, flask, media_lots):
    client.force_login(operator)
    forged = label_payload(media_lots[1].code)[:-2] + "ZZ"
    text = "\n".join([label_payload(media_lots[0].code), forged, "", label_payload(flask.code)])
    before, last_scan = counts(), ScanAttempt.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client.post(
        reverse("manufacturing:flask-feed", args=[flask.code]), {**feed_data(media_lots), "lots": text}
    )
    assert response.status_code == 400
    page = body(response)
    assert "Line 2 is not a reagent lot label: This label&#x27;s code does not verify" in page
    assert f"Line 4 is not a reagent lot label: {flask.code} is a flask." in page
    assert counts() == before
    outcomes = list(ScanAttempt.objects.filter(id__gt=last_scan).order_by("id").values_list("outcome", flat=True))
    assert outcomes == [ScanOutcome.OPENED, ScanOutcome.FORGED, ScanOutcome.OPENED], "every scan is recorded"


def test_feeding_a_discarded_flask_shows_who_discarded_it_and_writes_nothing(
    client, operator, second_operator, flask, media_lots
):
    client.force_login(second_operator)
    client.post(
        reverse("manufacturing:flask-discard", args=[flask.code]), {"reason": "cracked", "client_token": token()}
    )
    client.force_login(operator)
    before = counts()
    response = client.post(reverse("manufacturing:flask-feed", args=[flask.code]), feed_data(media_lots))
    assert response.status_code == 400
    assert f"Flask {flask.code} was discarded by Oscar Operator" in body(response)
    assert counts() == before


def test_a_backdated_feed_without_a_reason_is_refused_and_opens_the_backdating_box(
    client, operator, flask, media_lots, time_machine
):
    time_machine.move_to(timezone.now() + dt.timedelta(hours=3))
    client.force_login(operator)
    earlier = timezone.localtime(timezone.now() - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    url = reverse("manufacturing:flask-feed", args=[flask.code])
    response = client.post(url, feed_data(media_lots, occurred_at=earlier))
    assert response.status_code == 400
    assert "This entry is backdated; give the reason it is recorded late." in body(response)
    assert '<details class="backdate" open>' in body(response)
    response = client.post(url, feed_data(media_lots, occurred_at=earlier, backdate_reason="tablet was offline"))
    assert response.status_code == 302
    event = flask.events.get(kind=EventKind.FEED)
    assert timezone.localtime(event.occurred_at).strftime("%Y-%m-%dT%H:%M") == earlier
    assert event.backdate_reason == "tablet was offline"


def test_an_observation_with_contamination_quarantines_the_flask_and_says_so(client, operator, flask):
    client.force_login(operator)
    url = reverse("manufacturing:flask-observe", args=[flask.code])
    data = {
        "confluence_percent": "40",
        "morphology_ok": "yes",
        "note": "cloudy",
        "turbidity": "on",
        "client_token": token(),
    }
    response = client.post(url, data, follow=True)
    flask.refresh_from_db()
    deviation = Deviation.objects.get()
    assert flask.status == FlaskStatus.QUARANTINED
    page = body(response)
    assert f"Flask {flask.code} is now QUARANTINED" in page
    assert f"Deviation {deviation.code} was opened for QA" in page
    assert flask.events.get(kind=EventKind.OBSERVATION).history.get().history_user == operator


def test_a_normal_observation_is_recorded(client, operator, flask):
    client.force_login(operator)
    url = reverse("manufacturing:flask-observe", args=[flask.code])
    response = client.post(url, {"confluence_percent": "75", "morphology_ok": "yes", "client_token": token()})
    assert response.status_code == 302
    assert flask.events.get(kind=EventKind.OBSERVATION).confluence_percent == 75
    page = body(client.get(flask.get_absolute_url()))
    assert "Passage (75 % confluent)" in page


def test_abnormal_morphology_without_a_note_is_refused(client, operator, flask):
    client.force_login(operator)
    url = reverse("manufacturing:flask-observe", args=[flask.code])
    response = client.post(url, {"confluence_percent": "50", "morphology_ok": "no", "client_token": token()})
    assert response.status_code == 400
    assert "Describe what is wrong with the morphology in the note." in body(response)
    assert not flask.events.filter(kind=EventKind.OBSERVATION).exists()


def test_the_operator_passages_a_flask_into_labelled_children(client, operator, flask, trypsin, passage_vessel):
    client.force_login(operator)
    url = reverse("manufacturing:flask-passage", args=[flask.code])
    response = client.post(url, passage_data(trypsin, passage_vessel))
    assert response.status_code == 302
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.PASSAGED
    children = list(Flask.objects.filter(parent=flask))
    assert [c.passage_number for c in children] == [1, 1]
    assert all(Label.objects.filter(code=c.code).exists() for c in children)
    event = flask.events.get(kind=EventKind.PASSAGE)
    assert (event.total_cells, event.viable_cells) == (4_200_000, 4_000_000)
    assert event.history.get().history_user == operator
    page = body(client.get(flask.get_absolute_url()))
    assert "Passaged" in page
    assert children[0].code in page


def test_a_refused_passage_shows_the_message_and_seeds_nothing(client, operator, flask, trypsin, passage_vessel):
    client.force_login(operator)
    before = counts()
    response = client.post(
        reverse("manufacturing:flask-passage", args=[flask.code]),
        passage_data(trypsin, passage_vessel, viable_cells="5000000"),
    )
    assert response.status_code == 400
    assert "5,000,000 viable cells is more than the 4,200,000 counted" in body(response)
    assert counts() == before
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.IN_CULTURE


def test_a_count_that_is_not_a_number_is_refused_in_the_services_words(
    client, operator, flask, trypsin, passage_vessel
):
    client.force_login(operator)
    before = counts()
    response = client.post(
        reverse("manufacturing:flask-passage", args=[flask.code]),
        passage_data(trypsin, passage_vessel, total_cells="4.2 million"),
    )
    assert response.status_code == 400
    assert "The total cell count must be a whole number of cells above zero" in body(response)
    assert counts() == before


def test_the_passage_needs_exactly_one_detachment_lot(client, operator, flask, trypsin, media_lots, passage_vessel):
    client.force_login(operator)
    response = client.post(
        reverse("manufacturing:flask-passage", args=[flask.code]),
        passage_data(trypsin, passage_vessel, detachment_lot=scans(trypsin, media_lots[0])),
    )
    assert response.status_code == 400
    assert "Scan exactly one detachment reagent lot." in body(response)


def test_the_operator_discards_a_flask_with_a_reason(client, operator, flask):
    client.force_login(operator)
    url = reverse("manufacturing:flask-discard", args=[flask.code])
    assert client.post(url, {"reason": "  ", "client_token": token()}).status_code == 400
    assert Flask.objects.get(pk=flask.pk).status == FlaskStatus.IN_CULTURE
    response = client.post(url, {"reason": "flask dropped", "client_token": token()})
    assert response.status_code == 302
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.DISCARDED
    assert flask.history.first().history_user == operator
    assert flask.history.first().history_change_reason == "discarded: flask dropped"


# --- reagent lots -------------------------------------------------------------------------------


def test_the_operator_receives_a_lot_into_quarantine(client, operator):
    client.force_login(operator)
    data = {
        "reagent": reagent("MEM-alpha").pk,
        "supplier": "Acme Bio",
        "lot_number": "MEM-77",
        "expiry_date": (timezone.localdate() + dt.timedelta(days=200)).isoformat(),
    }
    response = client.post(reverse("manufacturing:lot-receive"), data)
    lot = ReagentLot.objects.get(lot_number="MEM-77")
    assert response["Location"] == reverse("manufacturing:lot-detail", args=[lot.code])
    assert lot.status == LotStatus.QUARANTINE
    assert lot.history.get().history_user == operator
    page = body(client.get(response["Location"]))
    assert "Quarantine" in page
    assert f'src="{reverse("label-qr", args=[lot.code])}?v=' in page


def test_an_expired_lot_cannot_be_received(client, operator):
    client.force_login(operator)
    data = {
        "reagent": reagent("MEM-alpha").pk,
        "supplier": "Acme Bio",
        "lot_number": "OLD-1",
        "expiry_date": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
    }
    response = client.post(reverse("manufacturing:lot-receive"), data)
    assert response.status_code == 400
    assert "Lot OLD-1 expired on" in body(response)
    assert not ReagentLot.objects.exists()


def test_qa_releases_a_lot_and_cannot_release_it_twice(client, operator, qa_officer):
    lot = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="MEM-1",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    client.force_login(qa_officer)
    url = reverse("manufacturing:lot-release", args=[lot.code])
    assert client.post(url, {"reason": "CoA reviewed"}).status_code == 302
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED
    assert lot.history.first().history_user == qa_officer
    again = client.post(url, {"reason": "again"})
    assert again.status_code == 400
    assert "is released by qa; it cannot become released by qa." in body(again)


def test_a_recall_shows_every_flask_and_batch_that_used_the_lot(client, qa_officer, batch, flasks, media_lots):
    client.force_login(qa_officer)
    lot = media_lots[0]
    response = client.post(reverse("manufacturing:lot-recall", args=[lot.code]), {"reason": "supplier notice"})
    assert response.status_code == 302
    lot.refresh_from_db()
    assert (lot.status, lot.history.first().history_user) == (LotStatus.RECALLED, qa_officer)
    page = body(client.get(response["Location"]))
    assert "used in 2 flask(s) of 1 batch(es)" in page
    impact = page.split('id="recall-impact"')[1]
    assert batch.lot_number in impact
    for flask in flasks:
        assert flask.code in impact


def test_the_lot_list_filters_by_status(client, operator, qa_officer, media_lots):
    reagent_lot_recall(lot=media_lots[1], acting_user=qa_officer, reason="supplier notice")
    client.force_login(operator)
    page = body(client.get(reverse("manufacturing:lot-list"), {"status": "recalled"}))
    assert media_lots[1].code in page
    assert media_lots[0].code not in page
    assert '<span class="status status-recalled">Recalled</span>' in page


def test_scanning_a_lot_opens_its_page(client, operator, media_lots):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": label_payload(media_lots[0].code)})
    assert response["Location"] == reverse("manufacturing:lot-detail", args=[media_lots[0].code])


# --- the admin ------------------------------------------------------------------------------------


def test_the_admin_lists_the_cleanroom_records_read_only(admin_client, batch, flask, media_lots):
    flask_feed(flask=flask, acting_user=batch.started_by, volume_ml="15", lots=media_lots)
    for model in ("batch", "flask", "cultureevent", "reagentlot", "reagent", "vesseltype", "harvest"):
        assert admin_client.get(reverse(f"admin:manufacturing_{model}_changelist")).status_code == 200, model
    event = flask.events.get(kind=EventKind.FEED)
    page = admin_client.get(reverse("admin:manufacturing_cultureevent_change", args=[event.pk]))
    assert page.status_code == 200
    assert media_lots[0].code in body(page)
    assert admin_client.get(reverse("admin:manufacturing_flask_add")).status_code == 403


# --- query counts -------------------------------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_flask_and_batch_pages_issue_as_many_queries_for_40_flasks_as_for_2(
    client, study, clinician, operator, password, batch, flasks, media_lots
):
    big = batch_start(
        aspirate=accepted_aspirate(study, clinician, operator, password),
        acting_user=operator,
        mnc_total_cells=500_000_000,
        mnc_viability_percent="92",
    )
    many = seeded_flasks(big, operator, media_lots, count=40)
    for flask in many:
        for _ in range(3):
            flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)
    client.force_login(operator)
    small_batch_url = reverse("manufacturing:batch-detail", args=[batch.lot_number])
    small_flask_url = reverse("manufacturing:flask-detail", args=[flasks[0].code])
    for url in (small_batch_url, small_flask_url):
        client.get(url)  # warm the content-type cache, as on a running server
    small_batch = _queries(client, small_batch_url)
    big_batch = _queries(client, reverse("manufacturing:batch-detail", args=[big.lot_number]))
    small_flask = _queries(client, small_flask_url)
    big_flask = _queries(client, reverse("manufacturing:flask-detail", args=[many[-1].code]))
    print(f"\nbatch page: {small_batch} queries for 2 flasks, {big_batch} for 40 flasks with 3 feeds each")
    print(f"flask page: {small_flask} queries for a flask with 1 event, {big_flask} for one with 4 events")
    assert small_batch == big_batch
    assert small_flask == big_flask
