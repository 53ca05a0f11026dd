"""Many hands on the same flasks at once: row locks in PostgreSQL keep every count exact.

Each thread has its own database connection, as each gunicorn worker would; a barrier makes
them start together so that the transitions really race.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from lims.errors import DomainError
from manufacturing.models import CultureEvent, EventKind, Flask, FlaskStatus, ReagentUse
from manufacturing.services.culture import Passage, Seeding, flask_feed, flask_passage
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch, vessel

pytestmark = [pytest.mark.postgres, pytest.mark.requirement("CFR11.10f", "ANNEX11.7")]


def _race(threads: int, work: Callable[[int], None]) -> float:
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.monotonic() - began


@pytest.fixture
def media(operator, qa_officer):
    return [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]


def test_50_operators_passaging_one_flask_at_once_record_exactly_one_passage(
    transactional_db, study, clinician, operator, qa_officer, password, media
):
    trypsin = released_lot("TrypLE Select", operator, qa_officer)
    [flask] = seeded_flasks(
        started_batch(accepted_aspirate(study, clinician, operator, password), operator), operator, media, count=1
    )
    passage = Passage(
        detachment_lot=trypsin,
        total_cells=4_200_000,
        viable_cells=4_000_000,
        children=2,
        media_lots=media,
        seeding=Seeding(vessel_type=vessel("T175"), cells_per_flask=300_000, medium_volume_ml="30"),
    )
    history_before = Flask.history.filter(id=flask.pk).count()
    outcomes: list[str] = []

    def passage_it(_: int) -> None:
        try:
            flask_passage(flask=flask, acting_user=operator, passage=passage)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.message)

    seconds = _race(50, passage_it)
    refusals = [o for o in outcomes if o != "ok"]
    print(
        f"RELIABILITY lost-update threads=50 successes={outcomes.count('ok')} refusals={len(refusals)} "
        f"history_added={Flask.history.filter(id=flask.pk).count() - history_before} seconds={seconds:.1f}"
    )
    assert outcomes.count("ok") == 1
    assert len(refusals) == 49
    assert all(f"Flask {flask.code} was passaged by Olivia Operator" in r for r in refusals)
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.PASSAGE).count() == 1
    assert Flask.objects.filter(parent=flask).count() == 2
    assert Flask.objects.get(pk=flask.pk).status == FlaskStatus.PASSAGED
    assert Flask.history.filter(id=flask.pk).count() == history_before + 1


def test_20_operators_feeding_20_flasks_100_times_each_keep_every_count_exact(
    transactional_db, study, clinician, operator, second_operator, password, media
):
    batch = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    flasks = seeded_flasks(batch, operator, media, count=20, cells=3_750_000, vessel_name="T25")
    feeds_per_thread = 100
    errors: list[str] = []

    def feed_round_robin(index: int) -> None:
        # Thread i starts on flask i and walks the ring, so every flask is fed by every thread.
        person = operator if index % 2 else second_operator
        for step in range(feeds_per_thread):
            try:
                flask_feed(flask=flasks[(index + step) % len(flasks)], acting_user=person, volume_ml="5", lots=media)
            except Exception as exc:  # every failure is a lost update to report
                errors.append(repr(exc))

    seconds = _race(20, feed_round_robin)
    feeds = Counter(
        CultureEvent.objects.filter(flask__in=flasks, kind=EventKind.FEED).values_list("flask_id", flat=True)
    )
    history = CultureEvent.history.filter(flask__in=flasks, kind=EventKind.FEED, history_type="+").count()
    uses = ReagentUse.objects.filter(event__flask__in=flasks, event__kind=EventKind.FEED).count()
    total = sum(feeds.values())
    print(
        f"RELIABILITY concurrent-feeds threads=20 flasks=20 feeds_per_thread={feeds_per_thread} recorded={total} "
        f"history_rows={history} reagent_uses={uses} errors={len(errors)} seconds={seconds:.1f} "
        f"feeds_per_second={total / seconds:.0f}"
    )
    assert errors == []
    assert total == 20 * feeds_per_thread
    assert set(feeds.values()) == {feeds_per_thread}
    assert history == total
    assert uses == total * len(media)
