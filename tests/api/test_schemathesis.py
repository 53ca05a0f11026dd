"""Schemathesis against the live schema, in-process over WSGI: as an outsider and as each role.

Every operation is exercised with generated requests (a bounded number of examples, derandomised
so the run is repeatable); every response must be no server error and must match the schema —
status code, content type and body. Roles address real records (their path parameters are the
codes of a seeded world) so that the 200 bodies and the rules' refusals are checked, not only 404s.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lims.labels import label_payload
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from lims.signatures import SignatureRequest
from manufacturing.services.infusion import InfusionRecord, bedside_verify, infusion_complete
from tests.api.helpers import stored_token, token_for
from tests.manufacturing.helpers import accepted_aspirate, product_at_ward, released_batch, seeded_flasks, started_batch

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Examples per operation and identity: enough to reach every branch of the adapters, few enough for ~40 s.
EXAMPLES = {"GET": 2, "POST": 4}
AT_THE_DOOR = 1  # nobody and the outsider are refused before anything is read
VITALS = {
    "heart_rate_bpm": "72",
    "systolic_mmhg": "124",
    "diastolic_mmhg": "78",
    "temperature_c": "36.8",
    "spo2_percent": "98",
    "respiratory_rate": "14",
}


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's own WSGI handler; like the test client, it must not close the test's connection per request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _signed(user: Any, password: str, meaning: str) -> SignatureRequest:
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason="checked")


@pytest.fixture
def world(study, clinician, second_clinician, operator, qa_officer, second_qa, password, time_machine) -> dict:
    """A released batch whose bag was infused, and a second batch with a flask in culture."""
    released = released_batch(study, clinician, operator, qa_officer, second_qa, password)
    product = product_at_ward(released, operator, clinician, second_clinician, password)
    infusion = bedside_verify(
        wristband_payload=label_payload(f"WB-{product.batch.subject.code}"),
        bag_payload=label_payload(product.code),
        acting_user=clinician,
        second_clinician=_signed(second_clinician, password, "witnessed"),
    )
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=40))
    now = timezone.now()
    infusion_complete(
        infusion=infusion,
        acting_user=clinician,
        record=InfusionRecord(now - dt.timedelta(minutes=30), now - dt.timedelta(minutes=5), "9.1", VITALS, VITALS),
        administered=_signed(clinician, password, "administered"),
        witnessed=_signed(second_clinician, password, "witnessed"),
    )
    lots = list(released.flasks.first().events.first().reagent_uses.values_list("lot", flat=True))
    from manufacturing.models import ReagentLot

    media = list(ReagentLot.objects.filter(pk__in=lots))
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    [flask] = seeded_flasks(batch, operator, media, count=1)
    dose = product.doses.get(status="verified")
    return {
        "code": {
            "aspirates": batch.aspirate.code,
            "batches": released.lot_number,
            "flasks": flask.code,
            "reagent-lots": media[0].code,
            "products": product.code,
            "studies": study.code,
            "subjects": released.subject.code,
            "labels": flask.code,
            "BiologicallyDerivedProduct": product.code,
            "deviations": "DEV-0000-0000",
        },
        "lot_number": {"batches": released.lot_number},
        "id": {
            "doses": dose.pk,
            "infusions": infusion.pk,
            "Procedure": infusion.pk,
            "culture-events": flask.events.first().pk,
            "qc-results": released.qc_results.first().pk,
            "custody-events": product.batch.aspirate.pk and _first_custody(),
        },
    }


def _first_custody() -> int:
    from lims.models import CustodyEvent

    return CustodyEvent.objects.order_by("id").first().pk


def _known_path(operation: Any, world: dict) -> dict[str, Any] | None:
    names = [p.name for p in operation.path_parameters]
    if not names:
        return None
    segments = operation.path.strip("/").split("/")
    resource = segments[2] if segments[1] == "fhir" else segments[1]
    found = {name: world.get(name, {}).get(resource) for name in names}
    return found if all(v is not None for v in found.values()) else None


@pytest.fixture
def identities(operator, qa_officer, clinician, lab_manager, outsider) -> list[tuple[str, str | None]]:
    return [
        ("nobody", None),
        ("outsider", token_for(outsider, OPERATOR)),
        ("operator", token_for(operator, OPERATOR)),
        ("qa", token_for(qa_officer, QA)),
        ("clinician", token_for(clinician, CLINICIAN)),
        ("lab manager", token_for(lab_manager, LAB_MANAGER)),
    ]


def _exercise(
    operation: Any, headers: dict[str, str], path_parameters: dict[str, Any] | None, tally: Counter[str], examples: int
) -> str | None:
    strategy = operation.as_strategy(path_parameters=path_parameters) if path_parameters else operation.as_strategy()

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        tally[f"{operation.method.upper()} {response.status_code}"] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them together
        return f"{operation.method.upper()} {operation.path}: {exc}"[:3000]
    return None


def test_the_live_schema_holds_for_an_outsider_and_every_role(wsgi_app, world, identities):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (op.path.endswith("/revoke/"), op.path, op.method),  # a token revoking itself goes last
    )
    assert len(operations) >= 45
    failures, tally = [], Counter[str]()
    for name, token in identities:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for operation in operations:
            at_the_door = name in ("nobody", "outsider")
            known = None if at_the_door else _known_path(operation, world)
            examples = AT_THE_DOOR if at_the_door else EXAMPLES[operation.method.upper()]
            failure = _exercise(operation, headers, known, tally, examples)
            if failure:
                failures.append(f"[{name}] {failure}")
    print(sorted(tally.items()))
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n{len(failures)} operation(s) failed"
    # The run reached the records and the rules, not only the doors: reads answered, steps were taken or refused.
    assert tally["GET 200"] >= 100
    assert tally["POST 422"] + tally["POST 409"] >= 20
    assert tally["GET 401"]
    assert tally["GET 403"]
    assert tally["POST 400"]
    assert stored_token(identities[2][1]).owner.username == "olivia"
