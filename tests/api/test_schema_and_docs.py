"""The OpenAPI schema and the reference page: complete, with examples, readable without a CDN."""

from __future__ import annotations

import pytest

from api.idempotency import HEADER
from tests.api.helpers import Api

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(db):
    response = Api().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_the_schema_is_openapi_3_and_lists_every_capability(schema):
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for expected in (
        "/api/scans/",
        "/api/labels/{code}/custody/",
        "/api/flasks/{code}/feed/",
        "/api/flasks/{code}/observe/",
        "/api/flasks/{code}/passage/",
        "/api/flasks/{code}/discard/",
        "/api/reagent-lots/",
        "/api/reagent-lots/{code}/release/",
        "/api/reagent-lots/{code}/recall/",
        "/api/batches/{lot_number}/qc-results/",
        "/api/batches/{lot_number}/decision/",
        "/api/aspirates/{code}/receive/",
        "/api/products/{code}/doses/",
        "/api/doses/{id}/verify/",
        "/api/fhir/BiologicallyDerivedProduct/{code}",
        "/api/fhir/Procedure/{id}",
        "/api/reminders/",
    ):
        assert expected in paths


def test_every_operation_has_an_example_and_documents_its_refusals(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        examples = [
            example
            for response in responses.values()
            for media in response.get("content", {}).values()
            for example in media.get("examples", {})
        ]
        assert examples, f"{method.upper()} {path} has no example"
        assert {"401", "403"} <= set(responses), f"{method.upper()} {path}"
        if method == "post":
            assert {"400", "409", "422"} <= set(responses), f"{method.upper()} {path}"
            assert operation["requestBody"]["content"]["application/json"].get("examples"), path


def test_writes_take_an_idempotency_key_and_refuse_unknown_fields(schema):
    for path, method, operation in _operations(schema):
        if method != "post" or path == "/api/tokens/":
            continue
        assert HEADER in [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"], path
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert schema["components"]["schemas"][ref]["additionalProperties"] is False, path


def test_tokens_are_a_bearer_scheme(schema):
    assert schema["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token limited to one role (see docs/api.md).",
    }


def test_the_reference_page_needs_no_script_from_anywhere(db):
    response = Api().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script" not in html
    assert 'href="/api/schema/"' in html
    assert "/api/flasks/{code}/feed/" in html
    assert "Fresh medium, two lots scanned" in html
