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
