"""Every state-changing endpoint goes through the page's service: same rules, same sentences, same history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lims.errors import DomainError
from lims.labels import label_payload
from lims.models import CustodyEvent, Deviation, ScanAttempt
from lims.services import custody_record, scan_resolve
from lims.signatures import SignatureRequest
from manufacturing.models import (
    BatchStatus,
    CultureEvent,
    DoseCalculation,
    DoseStatus,
    Flask,
    FlaskStatus,
    LotStatus,
    QcFlag,
    QcResult,
    ReagentLot,
)
from manufacturing.services import culture, infusion, lots, release
from samples.models import AspirateStatus
from samples.services import aspirate_receive
from tests.manufacturing.helpers import reagent, vessel
from tests.samples.helpers import aspirate_in_transit, enrolled_subject


def refusal_of(call) -> DomainError:
    """What the service itself says when the page asks for the same step."""
    with pytest.raises(DomainError) as refused:
        call()
    return refused.value


def scans(lots_):
    return [label_payload(lot.code) for lot in lots_]


def signature(user, password, meaning, reason="checked"):
    return {"username": user.username, "password": password, "meaning": meaning, "reason": reason}


# --- Scanning and custody -------------------------------------------------------------------------


def test_a_scan_opens_the_item_and_is_recorded(as_operator, flask):
    response = as_operator.post("/api/scans/", {"payload": label_payload(flask.code)})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "flask"
    assert (body["code"], body["url"], body["api_url"]) == (
        flask.code,
        f"/manufacturing/flasks/{flask.code}/",
        f"/api/flasks/{flask.code}/",
    )
    attempt = ScanAttempt.objects.get(pk=body["scan_id"])
    assert attempt.outcome == "opened"
    assert attempt.history.get().history_user.username == "olivia"


def test_a_forged_scan_is_refused_with_the_pages_sentence_and_recorded(as_operator, operator, flask):
    forged = label_payload(flask.code)[:-1] + ("A" if not label_payload(flask.code).endswith("A") else "B")
    response = as_operator.post("/api/scans/", {"payload": forged})
    assert response.status_code == 422
    assert response.json()["detail"] == scan_resolve(payload=forged, acting_user=operator).error
    assert response.json()["code"] == "scan_forged"
    assert ScanAttempt.objects.filter(outcome="forged").count() == 2


def test_a_custody_hand_over_is_recorded_after_scanning_the_item(as_operator, flask):
    body = {
        "scanned_payload": label_payload(flask.code),
        "handed_over_by": "Olivia Operator",
        "received_by": "Oscar Operator",
        "location": "Incubator 2",
        "occurred_at": timezone.now().isoformat(),
        "temperature_c": "37.0",
        "container_condition": "intact",
    }
    response = as_operator.post(f"/api/labels/{flask.code}/custody/", body)
    assert response.status_code == 201, response.json()
    event = CustodyEvent.objects.get(pk=response.json()["id"])
    assert (event.received_by, event.temperature_c) == ("Oscar Operator", Decimal("37.0"))
    assert event.history.get().history_user.username == "olivia"


def test_custody_refuses_the_same_person_on_both_sides_like_the_page(as_operator, operator, flask):
    moment = timezone.now()
    body = {
        "scanned_payload": label_payload(flask.code),
        "handed_over_by": "Olivia Operator",
        "received_by": "olivia operator",
        "location": "Incubator 2",
        "occurred_at": moment.isoformat(),
        "temperature_c": "37.0",
        "container_condition": "intact",
    }
    response = as_operator.post(f"/api/labels/{flask.code}/custody/", body)
    expected = refusal_of(
        lambda: custody_record(
            label=flask_label(flask),
            acting_user=operator,
            handed_over_by="Olivia Operator",
            received_by="olivia operator",
            location="Incubator 2",
            occurred_at=moment,
            temperature_c="37.0",
            container_condition="intact",
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    assert not CustodyEvent.objects.filter(label__code=flask.code).exists()


def test_custody_of_another_item_than_the_one_scanned_is_refused(as_operator, flask, media_lots):
    body = {
        "scanned_payload": label_payload(media_lots[0].code),
        "handed_over_by": "Olivia Operator",
        "received_by": "Oscar Operator",
        "location": "Incubator 2",
        "occurred_at": timezone.now().isoformat(),
        "temperature_c": "37.0",
        "container_condition": "intact",
    }
    response = as_operator.post(f"/api/labels/{flask.code}/custody/", body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"You scanned {media_lots[0].code}, but this step is for {flask.code}.")


def flask_label(flask):
    from lims.models import Label

    return Label.objects.get(code=flask.code)


# --- Culture steps --------------------------------------------------------------------------------


def test_feeding_through_the_api_records_the_event_the_lots_and_the_history(as_operator, flask, media_lots):
    response = as_operator.post(
        f"/api/flasks/{flask.code}/feed/", {"volume_ml": "15.0", "lot_scans": scans(media_lots)}
    )
    assert response.status_code == 201, response.json()
    event = CultureEvent.objects.get(pk=response.json()["event"]["id"])
    assert (event.kind, event.volume_ml, event.recorded_by.username) == ("feed", Decimal("15.0"), "olivia")
    assert sorted(event.reagent_uses.values_list("lot__code", flat=True)) == sorted(lot.code for lot in media_lots)
    row = event.history.get()
    assert (row.history_user.username, row.history_change_reason) == ("olivia", "fed")


def test_feeding_a_discarded_flask_is_refused_with_the_services_sentence(as_operator, operator, flask, media_lots):
    culture.flask_discard(flask=flask, acting_user=operator, reason="contaminated")
    before = CultureEvent.objects.count()
    response = as_operator.post(
        f"/api/flasks/{flask.code}/feed/", {"volume_ml": "15.0", "lot_scans": scans(media_lots)}
    )
    expected = refusal_of(
        lambda: culture.flask_feed(flask=flask, acting_user=operator, volume_ml="15.0", lots=media_lots)
    )
    assert response.status_code == 409
    assert response.json() == {"detail": expected.message, "code": "flask_closed", "reasons": [expected.message]}
    assert CultureEvent.objects.count() == before


def test_a_quarantined_lot_cannot_feed_a_flask_through_the_api_either(as_operator, operator, flask):
    quarantined = lots.reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="Q-1",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    response = as_operator.post(
        f"/api/flasks/{flask.code}/feed/", {"volume_ml": "15.0", "lot_scans": scans([quarantined])}
    )
    expected = refusal_of(
        lambda: culture.flask_feed(flask=flask, acting_user=operator, volume_ml="15.0", lots=[quarantined])
    )
    assert (response.status_code, response.json()["detail"]) == (409, expected.message)


def test_an_observation_with_contamination_quarantines_the_flask_and_opens_a_deviation(as_operator, flask):
    body = {"confluence_percent": 40, "morphology_ok": True, "turbidity": True, "note": "cloudy medium"}
    response = as_operator.post(f"/api/flasks/{flask.code}/observe/", body)
    assert response.status_code == 201, response.json()
    deviation = Deviation.objects.get()
    assert response.json()["flask_status"] == "quarantined"
    assert response.json()["deviation"] == deviation.code


def test_an_abnormal_morphology_without_a_note_is_refused_like_the_page(as_operator, operator, flask):
    response = as_operator.post(
        f"/api/flasks/{flask.code}/observe/", {"confluence_percent": 60, "morphology_ok": False}
    )
    expected = refusal_of(
        lambda: culture.flask_observe(
            flask=flask,
            acting_user=operator,
            observation=culture.Observation(confluence_percent=60, morphology_ok=False),
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)


def _passage_body(trypsin, media_lots, **changes):
    body = {
        "detachment_lot_scan": label_payload(trypsin.code),
        "media_lot_scans": scans(media_lots),
        "total_cells": 4_200_000,
        "viable_cells": 4_000_000,
        "children": 2,
        "vessel_type": "T175",
        "cells_per_flask": 350_000,
        "medium_volume_ml": "30.0",
    }
    return {**body, **changes}


def test_a_passage_closes_the_flask_and_seeds_its_children(as_operator, flask, trypsin, media_lots):
    vessel("T175")
    response = as_operator.post(f"/api/flasks/{flask.code}/passage/", _passage_body(trypsin, media_lots))
    assert response.status_code == 201, response.json()
    children = response.json()["children"]
    assert len(children) == 2
    assert set(Flask.objects.filter(parent=flask).values_list("code", flat=True)) == set(children)
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.PASSAGED


def test_a_passage_with_more_viable_than_total_cells_is_refused_like_the_page(
    as_operator, operator, flask, trypsin, media_lots
):
    t175 = vessel("T175")
    response = as_operator.post(
        f"/api/flasks/{flask.code}/passage/", _passage_body(trypsin, media_lots, viable_cells=5_000_000)
    )
    expected = refusal_of(
        lambda: culture.flask_passage(
            flask=flask,
            acting_user=operator,
            passage=culture.Passage(
                detachment_lot=trypsin,
                total_cells=4_200_000,
                viable_cells=5_000_000,
                children=2,
                media_lots=media_lots,
                seeding=culture.Seeding(vessel_type=t175, cells_per_flask=350_000, medium_volume_ml="30.0"),
            ),
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    assert not Flask.objects.filter(parent=flask).exists()


def test_discarding_needs_a_reason_like_the_page(as_operator, operator, flask):
    response = as_operator.post(f"/api/flasks/{flask.code}/discard/", {"reason": "  "})
    expected = refusal_of(lambda: culture.flask_discard(flask=flask, acting_user=operator, reason="  "))
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    ok = as_operator.post(f"/api/flasks/{flask.code}/discard/", {"reason": "dropped"})
    assert (ok.status_code, ok.json()["flask_status"]) == (201, "discarded")


# --- Reagent lots -----------------------------------------------------------------------------------


def test_a_lot_is_received_into_quarantine_released_by_qa_and_recalled(as_operator, as_qa, db):
    reagent("MEM-alpha")
    expiry = (timezone.localdate() + dt.timedelta(days=120)).isoformat()
    body = {"reagent": "MEM-alpha", "supplier": "Acme Bio", "lot_number": "MA-77", "expiry_date": expiry}
    received = as_operator.post("/api/reagent-lots/", body)
    assert (received.status_code, received.json()["status"]) == (201, "quarantine")
    code = received.json()["code"]
    assert as_operator.post(f"/api/reagent-lots/{code}/release/", {"reason": "CoA ok"}).status_code == 403
    released = as_qa.post(f"/api/reagent-lots/{code}/release/", {"reason": "CoA reviewed"})
    assert (released.status_code, released.json()["status"]) == (200, "released")
    recalled = as_qa.post(f"/api/reagent-lots/{code}/recall/", {"reason": "supplier recall"})
    assert recalled.status_code == 200
    assert recalled.json() == {**recalled.json(), "flasks": [], "batches": []}
    lot = ReagentLot.objects.get(code=code)
    assert lot.status == LotStatus.RECALLED
    assert lot.history.latest().history_change_reason == "supplier recall"


def test_an_expired_lot_cannot_be_received_like_the_page(as_operator, operator):
    mem = reagent("MEM-alpha")
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    body = {"reagent": "MEM-alpha", "supplier": "Acme Bio", "lot_number": "OLD-1", "expiry_date": yesterday.isoformat()}
    response = as_operator.post("/api/reagent-lots/", body)
    expected = refusal_of(
        lambda: lots.reagent_lot_receive(
            reagent=mem, acting_user=operator, supplier="Acme Bio", lot_number="OLD-1", expiry_date=yesterday
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    assert not ReagentLot.objects.exists()


def test_releasing_a_lot_twice_is_a_conflict_with_the_services_sentence(as_qa, qa_officer, media_lots):
    lot = media_lots[0]
    response = as_qa.post(f"/api/reagent-lots/{lot.code}/release/", {"reason": "again"})
    expected = refusal_of(lambda: lots.reagent_lot_release(lot=lot, acting_user=qa_officer, reason="again"))
    assert response.json()["detail"] == expected.message
    assert response.status_code in (409, 422)


def test_recalling_a_recalled_lot_is_refused_like_the_page(as_qa, qa_officer, media_lots):
    lot = media_lots[0]
    assert as_qa.post(f"/api/reagent-lots/{lot.code}/recall/", {"reason": "recall"}).status_code == 200
    response = as_qa.post(f"/api/reagent-lots/{lot.code}/recall/", {"reason": "recall"})
    expected = refusal_of(lambda: lots.reagent_lot_recall(lot=lot, acting_user=qa_officer, reason="recall"))
    assert response.json()["detail"] == expected.message


# --- Release ------------------------------------------------------------------------------------------


def test_a_qc_result_is_entered_with_its_flag_stored(as_operator, testing_batch):
    viability = testing_batch.specification.criteria.get(attribute="Viability")
    body = {"criterion": viability.pk, "value": "94", "unit": "%", "analyst": "Q. C. Analyst"}
    response = as_operator.post(f"/api/batches/{testing_batch.lot_number}/qc-results/", body)
    assert response.status_code == 201, response.json()
    assert (response.json()["flag"], response.json()["attribute"]) == (QcFlag.PASS, "Viability")
    assert QcResult.objects.get(pk=response.json()["id"]).history.get().history_user.username == "olivia"


def test_a_qc_result_outside_release_testing_is_refused_like_the_page(as_operator, operator, testing_batch, batch):
    viability = testing_batch.specification.criteria.get(attribute="Viability")
    body = {"criterion": viability.pk, "value": "94", "unit": "%", "analyst": "Q. C. Analyst"}
    response = as_operator.post(f"/api/batches/{batch.lot_number}/qc-results/", body)
    expected = refusal_of(
        lambda: release.qc_result_record(
            batch=batch,
            criterion=viability,
            acting_user=operator,
            entry=release.ResultEntry(value="94", unit="%", analyst="Q. C. Analyst"),
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)


def test_a_criterion_of_another_studys_specification_is_refused_and_nothing_is_saved(
    as_operator, operator, testing_batch, lab_manager, qa_officer, password
):
    other_criterion = _criterion_of_another_study(lab_manager, qa_officer, password)
    body = {"criterion": other_criterion.pk, "value": "94", "unit": "%", "analyst": "Q. C. Analyst"}
    response = as_operator.post(f"/api/batches/{testing_batch.lot_number}/qc-results/", body)
    expected = refusal_of(
        lambda: release.qc_result_record(
            batch=testing_batch,
            criterion=other_criterion,
            acting_user=operator,
            entry=release.ResultEntry(value="94", unit="%", analyst="Q. C. Analyst"),
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    assert "another specification" in expected.message
    assert not QcResult.objects.filter(criterion=other_criterion).exists()


def _criterion_of_another_study(lab_manager, qa_officer, password):
    import json

    from samples.services import protocol_approve, study_create
    from tests.factories import REFERENCE
    from tests.manufacturing.helpers import REFERENCE as SPEC_REFERENCE

    data = json.loads(REFERENCE.read_text())
    data["study"] = {**data["study"], "code": "OA-MSC", "registry_id": "NCT09999999"}
    protocol = study_create(acting_user=lab_manager, data=data, reason="second study")
    protocol_approve(
        protocol=protocol,
        acting_user=lab_manager,
        signature=SignatureRequest(username=lab_manager.username, password=password, meaning="approved", reason="ok"),
    )
    rows = release.criteria_from_reference(json.loads(SPEC_REFERENCE.read_text())["release_spec"])
    spec = release.specification_create(
        study=protocol.study, acting_user=qa_officer, criteria=rows, change_summary="OA spec"
    )
    return spec.criteria.get(attribute="Viability")


@pytest.mark.requirement("CFR11.200")
def test_qa_releases_a_batch_with_a_re_authenticated_signature(
    as_operator, operator, testing_batch, second_qa, password
):
    from api.models import ApiToken  # noqa: F401 - the import proves the app is loaded
    from tests.api.helpers import Api, token_for
    from tests.manufacturing.helpers import enter_passing_results

    enter_passing_results(testing_batch, operator)
    as_second_qa = Api(token_for(second_qa, "QA officer"))
    wrong = as_second_qa.post(
        f"/api/batches/{testing_batch.lot_number}/decision/",
        {"decision": "released", "signature": signature(second_qa, "wrong-password", "released")},
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"
    response = as_second_qa.post(
        f"/api/batches/{testing_batch.lot_number}/decision/",
        {"decision": "released", "signature": signature(second_qa, password, "released", "all criteria met")},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == BatchStatus.RELEASED
    testing_batch.refresh_from_db()
    assert testing_batch.history.latest().history_user == second_qa


def test_release_with_missing_results_is_refused_with_every_reason(as_qa, qa_officer, testing_batch, password):
    body = {"decision": "released", "signature": signature(qa_officer, password, "released")}
    response = as_qa.post(f"/api/batches/{testing_batch.lot_number}/decision/", body)
    expected = refusal_of(
        lambda: release.batch_release_decide(
            batch=testing_batch,
            acting_user=qa_officer,
            decision="released",
            signature=SignatureRequest(
                username=qa_officer.username, password=password, meaning="released", reason="checked"
            ),
        )
    )
    assert response.status_code == 409
    assert response.json() == {"detail": expected.message, "code": "release_blocked", "reasons": expected.reasons}
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING


# --- Aspirate receipt ----------------------------------------------------------------------------------


def test_an_aspirate_is_received_by_scanning_its_tube(as_operator, study, clinician, password):
    aspirate = aspirate_in_transit(enrolled_subject(study, clinician, password), clinician, hours_ago=3)
    body = {
        "scanned_payload": label_payload(aspirate.code),
        "received_at": (aspirate.collected_at + dt.timedelta(hours=2)).isoformat(),
        "temperature_c": "21.0",
        "container_intact": True,
        "courier": "Hamid",
    }
    response = as_operator.post(f"/api/aspirates/{aspirate.code}/receive/", body)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == AspirateStatus.ACCEPTED


def test_an_aspirate_outside_the_transport_limits_is_never_silently_accepted(
    as_operator, operator, study, clinician, password
):
    aspirate = aspirate_in_transit(enrolled_subject(study, clinician, password), clinician, hours_ago=3)
    received_at = aspirate.collected_at + dt.timedelta(hours=2)
    body = {
        "scanned_payload": label_payload(aspirate.code),
        "received_at": received_at.isoformat(),
        "temperature_c": "30.0",
        "container_intact": True,
        "courier": "Hamid",
        "decision": "accept",
    }
    response = as_operator.post(f"/api/aspirates/{aspirate.code}/receive/", body)
    expected = refusal_of(
        lambda: aspirate_receive(
            aspirate=aspirate,
            acting_user=operator,
            scanned_payload=label_payload(aspirate.code),
            received_at=received_at,
            temperature_c=Decimal("30.0"),
            container_intact=True,
            courier="Hamid",
        )
    )
    assert response.status_code == 422
    assert response.json() == {"detail": expected.message, "code": "outside_limits", "reasons": expected.reasons}
    aspirate.refresh_from_db()
    assert aspirate.status == AspirateStatus.IN_TRANSIT


# --- Dose -------------------------------------------------------------------------------------------------


def test_a_dose_is_calculated_and_verified_by_a_second_clinician(as_clinician, product, second_clinician, password):
    from tests.api.helpers import Api, token_for

    body = {"weight_kg": "40", "weight_measured_on": timezone.localdate().isoformat(), "target_million_per_kg": "1.0"}
    calculated = as_clinician.post(f"/api/products/{product.code}/doses/", body)
    assert calculated.status_code == 201, calculated.json()
    dose_id = calculated.json()["id"]
    as_second = Api(token_for(second_clinician, "Clinician"))
    verified = as_second.post(
        f"/api/doses/{dose_id}/verify/", {"signature": signature(second_clinician, password, "verified")}
    )
    assert verified.status_code == 200, verified.json()
    assert (verified.json()["status"], verified.json()["verified_by"]) == (DoseStatus.VERIFIED, "colin")


def test_a_body_weight_outside_the_plausible_range_is_refused_like_the_page(as_clinician, clinician, product):
    today = timezone.localdate()
    body = {"weight_kg": "250", "weight_measured_on": today.isoformat(), "target_million_per_kg": "1.0"}
    response = as_clinician.post(f"/api/products/{product.code}/doses/", body)
    expected = refusal_of(
        lambda: infusion.dose_calculate(
            product=product,
            acting_user=clinician,
            weight_kg="250",
            weight_measured_on=today,
            target_million_per_kg="1.0",
        )
    )
    assert (response.status_code, response.json()["detail"]) == (422, expected.message)
    assert not DoseCalculation.objects.exists()


def test_the_person_who_calculated_a_dose_cannot_verify_it(as_clinician, clinician, product, password):
    dose = infusion.dose_calculate(
        product=product,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    response = as_clinician.post(
        f"/api/doses/{dose.pk}/verify/", {"signature": signature(clinician, password, "verified")}
    )
    expected = refusal_of(
        lambda: infusion.dose_verify(
            dose=dose,
            acting_user=clinician,
            signature=SignatureRequest(
                username=clinician.username, password=password, meaning="verified", reason="checked"
            ),
        )
    )
    assert (response.status_code, response.json()["detail"]) == (409, expected.message)
    dose.refresh_from_db()
    assert dose.status == DoseStatus.CALCULATED
