"""Personas with API tokens, and a cleanroom arranged through the services."""

from __future__ import annotations

from typing import Any

import pytest

from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from tests.api.helpers import Api, token_for
from tests.factories import UserFactory
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch


@pytest.fixture
def second_clinician(db: Any) -> Any:
    return UserFactory(username="colin", first_name="Colin", last_name="Clinician", role=CLINICIAN)


@pytest.fixture
def second_qa(db: Any) -> Any:
    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA)


@pytest.fixture
def as_operator(operator: Any) -> Api:
    return Api(token_for(operator, OPERATOR))


@pytest.fixture
def as_qa(qa_officer: Any) -> Api:
    return Api(token_for(qa_officer, QA))


@pytest.fixture
def as_clinician(clinician: Any) -> Api:
    return Api(token_for(clinician, CLINICIAN))


@pytest.fixture
def as_lab_manager(lab_manager: Any) -> Api:
    return Api(token_for(lab_manager, LAB_MANAGER))


@pytest.fixture
def as_outsider(outsider: Any) -> Api:
    """A token whose owner holds no role (any more): it may do nothing."""
    return Api(token_for(outsider, OPERATOR))


@pytest.fixture
def media_lots(operator: Any, qa_officer: Any) -> list[Any]:
    return [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]


@pytest.fixture
def trypsin(operator: Any, qa_officer: Any) -> Any:
    return released_lot("TrypLE Select", operator, qa_officer)


@pytest.fixture
def batch(study: Any, clinician: Any, operator: Any, password: str) -> Any:
    return started_batch(accepted_aspirate(study, clinician, operator, password), operator)


@pytest.fixture
def flask(batch: Any, operator: Any, media_lots: list[Any]) -> Any:
    return seeded_flasks(batch, operator, media_lots, count=1)[0]


@pytest.fixture
def testing_batch(study: Any, clinician: Any, operator: Any, qa_officer: Any, password: str, media_lots: Any) -> Any:
    """A harvested batch in release testing against the study's approved specification."""
    from manufacturing.services.release import batch_start_release_testing
    from tests.manufacturing.helpers import approved_specification, harvested_batch

    approved_specification(study, qa_officer, password)
    harvested = harvested_batch(
        started_batch(accepted_aspirate(study, clinician, operator, password), operator), operator, media_lots
    )
    return batch_start_release_testing(batch=harvested, acting_user=operator)


@pytest.fixture
def released(study: Any, clinician: Any, operator: Any, qa_officer: Any, second_qa: Any, password: str) -> Any:
    from tests.manufacturing.helpers import released_batch

    return released_batch(study, clinician, operator, qa_officer, second_qa, password)


@pytest.fixture
def product(released: Any, operator: Any) -> Any:
    from manufacturing.services.infusion import product_formulate

    return product_formulate(batch=released, acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
