"""Read-only resources: paginated, filtered, ordered, pseudonymous, and a fixed number of queries per page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lims.labels import label_payload
from manufacturing.services import culture
from tests.manufacturing.helpers import accepted_aspirate, seeded_flasks, started_batch

LISTS = [
    "/api/studies/",
    "/api/subjects/",
    "/api/aspirates/",
    "/api/batches/",
    "/api/flasks/",
    "/api/culture-events/",
    "/api/reagent-lots/",
    "/api/qc-results/",
    "/api/deviations/",
    "/api/products/",
    "/api/doses/",
    "/api/custody-events/",
    "/api/infusions/",
    "/api/follow-up-results/",
    "/api/reminders/",
]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_answers_with_a_page(as_qa, flask, path):
    response = as_qa.get(path)
    assert response.status_code == 200, response.json()
    assert set(response.json()) == {"count", "next", "previous", "results"}


def test_details_are_addressed_by_the_codes_people_read(as_operator, flask, media_lots):
    batch = flask.batch
    assert as_operator.get(f"/api/flasks/{flask.code}/").json()["batch"] == batch.lot_number
    assert as_operator.get(f"/api/batches/{batch.lot_number}/").json()["aspirate"] == batch.aspirate.code
    assert as_operator.get(f"/api/aspirates/{batch.aspirate.code}/").json()["status"] == "accepted"
    assert as_operator.get(f"/api/reagent-lots/{media_lots[0].code}/").json()["status"] == "released"
    assert as_operator.get(f"/api/studies/{batch.subject.study.code}/").json()["registry_id"] == "NCT03333681"


def test_a_subject_is_pseudonymous(as_clinician, subject):
    body = as_clinician.get(f"/api/subjects/{subject.code}/").json()
    assert body["code"] == subject.code
    assert "date_of_birth" not in body
    assert not {"name", "first_name", "last_name"} & set(body)


def test_filters_by_status_study_and_dates(as_operator, operator, batch, media_lots):
    flask, *_ = seeded_flasks(batch, operator, media_lots, count=3)
    culture.flask_discard(flask=flask, acting_user=operator, reason="contaminated")
    listing = as_operator.get("/api/flasks/", {"status": "in_culture", "study": "RA-MSC"}).json()
    assert listing["count"] == 2
    assert as_operator.get("/api/flasks/", {"status": "discarded"}).json()["count"] == 1
    assert as_operator.get("/api/flasks/", {"study": "NO-SUCH"}).json()["count"] == 0
    today = timezone.localdate()
    assert as_operator.get("/api/flasks/", {"seeded_after": today.isoformat()}).json()["count"] == 3
    tomorrow = (today + dt.timedelta(days=2)).isoformat()
    assert as_operator.get("/api/flasks/", {"seeded_after": tomorrow}).json()["count"] == 0
    kinds = {e["kind"] for e in as_operator.get("/api/culture-events/", {"flask": flask.code}).json()["results"]}
    assert kinds == {"seed", "discard"}


def test_pagination_and_ordering(as_operator, batch, operator, media_lots):
    seeded_flasks(batch, operator, media_lots, count=5)
    first = as_operator.get("/api/flasks/", {"page_size": 2, "ordering": "-code"}).json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"]
    codes = [f["code"] for f in first["results"]]
    assert codes == sorted(codes, reverse=True)
    assert as_operator.get("/api/flasks/", {"page": 9}).status_code == 404


def _queries(api, path: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) >= min(page_size, 2)
    return len(captured.captured_queries)


def test_batch_subject_and_aspirate_pages_cost_the_same_queries_whatever_their_size(
    as_operator, study, clinician, operator, password
):
    for _ in range(3):
        started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    for path in ("/api/batches/", "/api/aspirates/", "/api/subjects/"):
        assert _queries(as_operator, path, 1) == _queries(as_operator, path, 12), path


@pytest.mark.parametrize("path", ["/api/flasks/", "/api/culture-events/", "/api/custody-events/"])
def test_a_list_page_costs_the_same_queries_whatever_its_size(as_operator, operator, batch, media_lots, path):
    flasks = seeded_flasks(batch, operator, media_lots, count=6)
    for flask in flasks:
        culture.flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)
        as_operator.post(
            f"/api/labels/{flask.code}/custody/",
            {
                "scanned_payload": label_payload(flask.code),
                "handed_over_by": "Olivia Operator",
                "received_by": "Oscar Operator",
                "location": "Incubator",
                "occurred_at": timezone.now().isoformat(),
                "temperature_c": "37",
                "container_condition": "intact",
            },
        )

    assert _queries(as_operator, path, 1) == _queries(as_operator, path, 12)


def test_qc_result_and_deviation_pages_cost_the_same_queries_whatever_their_size(as_qa, operator, testing_batch):
    from manufacturing.services.release import ResultEntry, qc_result_record
    from tests.manufacturing.helpers import enter_passing_results

    enter_passing_results(testing_batch, operator, skip=("CD45", "CD34"))
    for attribute in ("CD45", "CD34"):
        criterion = testing_batch.specification.criteria.get(attribute=attribute)
        qc_result_record(
            batch=testing_batch,
            criterion=criterion,
            acting_user=operator,
            entry=ResultEntry(value="9.0", unit="%", analyst="Q. C. Analyst"),
        )
    assert as_qa.get("/api/qc-results/", {"flag": "oos"}).json()["count"] == 2
    for path in ("/api/qc-results/", "/api/deviations/"):
        assert _queries(as_qa, path, 1) == _queries(as_qa, path, 12), path
