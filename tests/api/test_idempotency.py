"""Idempotency-Key: ten retries, one record, the same answer — sequentially, and at once on PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from api.models import IdempotencyRecord
from lims.labels import label_payload
from lims.models import ScanAttempt
from manufacturing.models import CultureEvent, EventKind, Flask
from tests.api.helpers import Api, token_for
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch

RETRIES = 10


def test_ten_replays_of_a_scan_record_one_scan_and_answer_identically(as_operator, flask):
    key = str(uuid.uuid4())
    body = {"payload": label_payload(flask.code)}
    before = ScanAttempt.objects.count()
    responses = [as_operator.post("/api/scans/", body, key=key) for _ in range(RETRIES)]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert ScanAttempt.objects.count() == before + 1
    assert IdempotencyRecord.objects.count() == 1
    assert [r.headers.get("Idempotent-Replayed") for r in responses] == [None] + ["true"] * (RETRIES - 1)
    print(f"\nRELIABILITY idempotency sequential scan replays={RETRIES} records={ScanAttempt.objects.count() - before}")


def test_ten_replays_of_a_feed_record_one_event(as_operator, flask, media_lots):
    key = str(uuid.uuid4())
    body = {"volume_ml": "15.0", "lot_scans": [label_payload(lot.code) for lot in media_lots]}
    before = ScanAttempt.objects.count()
    responses = [as_operator.post(f"/api/flasks/{flask.code}/feed/", body, key=key) for _ in range(RETRIES)]
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.FEED).count() == 1
    assert ScanAttempt.objects.count() == before + 2, "the lots were scanned once"


def test_a_replayed_refusal_is_the_same_refusal_and_changes_nothing(as_operator, flask):
    key = str(uuid.uuid4())
    responses = [as_operator.post(f"/api/flasks/{flask.code}/discard/", {"reason": ""}, key=key) for _ in range(3)]
    assert {r.status_code for r in responses} == {422}
    assert len({r.content for r in responses}) == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(as_operator, flask, media_lots):
    key = str(uuid.uuid4())
    body = {"volume_ml": "15.0", "lot_scans": [label_payload(lot.code) for lot in media_lots]}
    assert as_operator.post(f"/api/flasks/{flask.code}/feed/", body, key=key).status_code == 201
    other = as_operator.post(f"/api/flasks/{flask.code}/feed/", {**body, "volume_ml": "20.0"}, key=key)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    elsewhere = as_operator.post("/api/scans/", {"payload": label_payload(flask.code)}, key=key)
    assert elsewhere.status_code == 422
    assert CultureEvent.objects.filter(kind=EventKind.FEED).count() == 1


def test_keys_belong_to_their_owner(as_operator, second_operator, flask):
    key = str(uuid.uuid4())
    body = {"payload": label_payload(flask.code)}
    first = as_operator.post("/api/scans/", body, key=key)
    second = Api(token_for(second_operator, "Cleanroom operator")).post("/api/scans/", body, key=key)
    assert first.json()["scan_id"] != second.json()["scan_id"]
    assert IdempotencyRecord.objects.count() == 2


def test_a_malformed_key_is_400(as_operator, flask):
    before = ScanAttempt.objects.count()
    response = as_operator.post("/api/scans/", {"payload": label_payload(flask.code)}, key="has spaces/and slashes")
    assert response.status_code == 400
    assert ScanAttempt.objects.count() == before


def test_the_record_keeps_no_password(as_qa, qa_officer, password, batch):
    body = {
        "decision": "rejected",
        "signature": {"username": "quinn", "password": password, "meaning": "rejected", "reason": "x"},
    }
    as_qa.post(f"/api/batches/{batch.lot_number}/decision/", body, key="k-1")
    record = IdempotencyRecord.objects.get()
    assert password not in str(IdempotencyRecord.objects.values().get())
    assert record.history.count() == 2


# --- Concurrent retries on PostgreSQL ------------------------------------------------------------


def _at_once(calls):
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            start.wait()
            results[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
def test_concurrent_replays_of_a_scan_yield_one_record(transactional_db, operator):
    lot = released_lot("MEM-alpha", operator, _qa())
    raw = token_for(operator, "Cleanroom operator")
    key, body = str(uuid.uuid4()), {"payload": label_payload(lot.code)}
    responses = _at_once([lambda: Api(raw).post("/api/scans/", body, key=key) for _ in range(RETRIES)])
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert ScanAttempt.objects.filter(label__code=lot.code).count() == 1
    assert IdempotencyRecord.objects.filter(key=key).count() == 1
    print(f"\nRELIABILITY idempotency concurrent scan replays={RETRIES} records=1")


@pytest.mark.postgres
def test_concurrent_replays_of_a_passage_yield_one_passage(transactional_db, study, clinician, operator, password):
    qa = _qa()
    media = [released_lot("MEM-alpha", operator, qa), released_lot("Human platelet lysate", operator, qa)]
    trypsin = released_lot("TrypLE Select", operator, qa)
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    [flask] = seeded_flasks(batch, operator, media, count=1)
    from tests.manufacturing.helpers import vessel

    vessel("T175")
    body = {
        "detachment_lot_scan": label_payload(trypsin.code),
        "media_lot_scans": [label_payload(lot.code) for lot in media],
        "total_cells": 4_200_000,
        "viable_cells": 4_000_000,
        "children": 2,
        "vessel_type": "T175",
        "cells_per_flask": 350_000,
        "medium_volume_ml": "30.0",
    }
    raw, key = token_for(operator, "Cleanroom operator"), str(uuid.uuid4())
    responses = _at_once(
        [lambda: Api(raw).post(f"/api/flasks/{flask.code}/passage/", body, key=key) for _ in range(RETRIES)]
    )
    assert {r.status_code for r in responses} == {201}, [r.content for r in responses]
    assert len({r.content for r in responses}) == 1
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.PASSAGE).count() == 1
    assert Flask.objects.filter(parent=flask).count() == 2
    assert IdempotencyRecord.objects.filter(key=key).count() == 1
    print(f"\nRELIABILITY idempotency concurrent passage replays={RETRIES} passages=1")


def _qa():
    from tests.factories import UserFactory

    return UserFactory(username="quinn", first_name="Quinn", last_name="Assurance", role="QA officer")
