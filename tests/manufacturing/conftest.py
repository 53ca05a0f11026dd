from __future__ import annotations

from typing import Any

import pytest

from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch


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
def flasks(batch: Any, operator: Any, media_lots: list[Any]) -> list[Any]:
    return seeded_flasks(batch, operator, media_lots)


@pytest.fixture
def flask(flasks: list[Any]) -> Any:
    return flasks[0]


@pytest.fixture
def second_clinician(db: Any) -> Any:
    from lims.roles import CLINICIAN
    from tests.factories import UserFactory

    return UserFactory(username="colin", first_name="Colin", last_name="Clinician", role=CLINICIAN)


@pytest.fixture
def second_qa(db: Any) -> Any:
    from lims.roles import QA
    from tests.factories import UserFactory

    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA)


@pytest.fixture
def released(study: Any, clinician: Any, operator: Any, qa_officer: Any, second_qa: Any, password: str) -> Any:
    from tests.manufacturing.helpers import released_batch

    return released_batch(study, clinician, operator, qa_officer, second_qa, password)


@pytest.fixture
def formulated(released: Any, operator: Any) -> Any:
    from manufacturing.services.infusion import product_formulate

    return product_formulate(batch=released, acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")


@pytest.fixture
def at_ward(released: Any, operator: Any, clinician: Any, second_clinician: Any, password: str) -> Any:
    from tests.manufacturing.helpers import product_at_ward

    return product_at_ward(released, operator, clinician, second_clinician, password)
