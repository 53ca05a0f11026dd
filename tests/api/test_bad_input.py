"""Bad input is answered in words with a 4xx, never a server error, and nothing is half-saved."""

from __future__ import annotations

import pytest

from lims.labels import label_payload
from lims.models import ScanAttempt
from manufacturing.models import CultureEvent


@pytest.fixture
def feed_path(flask):
    return f"/api/flasks/{flask.code}/feed/"


def _nothing_saved(before):
    assert (ScanAttempt.objects.count(), CultureEvent.objects.count()) == before


def _counts():
    return ScanAttempt.objects.count(), CultureEvent.objects.count()


def test_malformed_json_is_a_400_with_a_sentence(as_operator, feed_path):
    before = _counts()
    response = as_operator.post(feed_path, raw='{"volume_ml": 15,')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].startswith("The body is not valid JSON")
    _nothing_saved(before)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"volume_ml": "fifteen", "lot_scans": []}, "volume_ml"),
        ({"volume_ml": "15", "lot_scans": "S1.RL-00001.X"}, "lot_scans"),
        ({"volume_ml": ["15"], "lot_scans": []}, "volume_ml"),
        ({"volume_ml": "15", "lot_scans": [None]}, "lot_scans"),
    ],
)
def test_wrong_types_name_the_field(as_operator, feed_path, body, field):
    before = _counts()
    response = as_operator.post(feed_path, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert any(reason.startswith(field) for reason in response.json()["reasons"])
    _nothing_saved(before)


def test_unknown_fields_are_refused_not_ignored(as_operator, feed_path, media_lots):
    body = {"volume_ml": "15", "lot_scans": [label_payload(media_lots[0].code)], "volume_mL": "20"}
    before = _counts()
    response = as_operator.post(feed_path, body)
    assert response.status_code == 400
    assert response.json()["reasons"] == ["volume_mL: Unknown field: this call does not take it."]
    _nothing_saved(before)


def test_an_unknown_field_inside_the_signature_is_refused(as_qa, qa_officer, password, batch):
    body = {
        "decision": "released",
        "signature": {"username": "quinn", "password": password, "meaning": "released", "reason": "x", "role": "QA"},
    }
    response = as_qa.post(f"/api/batches/{batch.lot_number}/decision/", body)
    assert response.status_code == 400
    assert response.json()["reasons"] == ["signature.role: Unknown field: this call does not take it."]


@pytest.mark.parametrize("raw", ["[1, 2, 3]", '"text"', "null", "42"])
def test_a_body_that_is_not_an_object_is_refused(as_operator, feed_path, raw):
    response = as_operator.post(feed_path, raw=raw)
    assert response.status_code == 400


def test_a_huge_payload_is_refused_before_it_is_read(as_operator, feed_path, settings):
    settings.STROMA_API_MAX_BODY_BYTES = 4096
    before = _counts()
    response = as_operator.post(feed_path, {"volume_ml": "15", "lot_scans": ["S1." + "A" * 10_000]})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    _nothing_saved(before)


def test_deeply_nested_json_is_a_400_not_a_crash(as_operator, feed_path):
    response = as_operator.post(feed_path, raw="[" * 30_000 + "]" * 30_000)
    assert response.status_code == 400


def test_not_a_number_constants_are_refused(as_operator, feed_path):
    response = as_operator.post(feed_path, raw='{"volume_ml": NaN, "lot_scans": []}')
    assert response.status_code == 400


def test_a_lone_surrogate_is_answered_in_words(as_operator, feed_path):
    response = as_operator.post(feed_path, raw='{"volume_ml": "15", "lot_scans": ["\\ud800"], "\\udfff": 1}')
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize(
    "occurred_at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-02-30T10:00:00Z", "yesterday"]
)
def test_impossible_or_absurd_times_are_400(as_operator, feed_path, media_lots, occurred_at):
    body = {"volume_ml": "15", "lot_scans": [label_payload(media_lots[0].code)], "occurred_at": occurred_at}
    response = as_operator.post(feed_path, body)
    assert response.status_code == 400


@pytest.mark.parametrize("count", [10**30, -(10**30)])
def test_absurd_numbers_are_400(as_operator, flask, media_lots, count):
    body = {
        "detachment_lot_scan": label_payload(media_lots[0].code),
        "total_cells": count,
        "viable_cells": 1,
        "children": 1,
        "vessel_type": "T75",
        "cells_per_flask": 1,
        "medium_volume_ml": "10",
    }
    response = as_operator.post(f"/api/flasks/{flask.code}/passage/", body)
    assert response.status_code == 400


def test_a_form_encoded_body_is_415(as_operator, feed_path):
    response = as_operator.post(feed_path, raw="volume_ml=15", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "path",
    [
        "/api/flasks/%00/",
        "/api/flasks/fl-000001/",
        "/api/doses/-1/",
        "/api/doses/99999999999999999999/",
        "/api/flasks/A/B/",
        "/api/nowhere",
    ],
)
def test_unknown_or_junk_addresses_are_json_404s(as_operator, db, path):
    response = as_operator.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_bad_filter_value_is_400(as_operator, db):
    response = as_operator.get("/api/batches/", {"status": "cooking", "started_after": "soon"})
    assert response.status_code == 400
    assert {r.split(":")[0] for r in response.json()["reasons"]} == {"status", "started_after"}
