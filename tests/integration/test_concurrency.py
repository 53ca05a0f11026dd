"""Two operators on one flask at once: PostgreSQL row locks let exactly one succeed."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from lims.errors import DomainError
from manufacturing.models import CultureEvent, EventKind, Flask, FlaskStatus
from manufacturing.services.culture import Passage, Seeding, flask_passage
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch, vessel

pytestmark = pytest.mark.postgres
THREADS = 8


def test_n_operators_passaging_the_same_flask_at_once_record_exactly_one_passage(
    transactional_db, study, clinician, operator, qa_officer, password
):
    media = [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]
    trypsin = released_lot("TrypLE Select", operator, qa_officer)
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    [flask] = seeded_flasks(batch, operator, media, count=1)
    passage = Passage(
        detachment_lot=trypsin,
        total_cells=4_200_000,
        viable_cells=4_000_000,
        children=2,
        media_lots=media,
        seeding=Seeding(vessel_type=vessel("T175"), cells_per_flask=300_000, medium_volume_ml="30"),
    )
    start = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def passage_it() -> None:
        try:
            start.wait()
            flask_passage(flask=flask, acting_user=operator, passage=passage)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=passage_it) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refusals = [o for o in outcomes if o != "ok"]
    print(f"concurrent passages: {outcomes.count('ok')} succeeded, {len(refusals)} refused")
    assert outcomes.count("ok") == 1
    assert len(refusals) == THREADS - 1
    assert all(f"Flask {flask.code} was passaged by Olivia Operator" in r for r in refusals)
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.PASSAGE).count() == 1
    assert Flask.objects.filter(parent=flask).count() == 2
    assert Flask.objects.get(pk=flask.pk).status == FlaskStatus.PASSAGED
    assert Flask.history.filter(id=flask.pk, status=FlaskStatus.PASSAGED).count() == 1
