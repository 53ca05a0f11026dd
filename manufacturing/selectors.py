"""Reads for the cleanroom pages: what a flask needs next, a batch's lineage and growth.

Each function fetches with a fixed number of queries whatever the number of flasks or events,
so a batch of 40 flasks loads as fast as a batch of 2.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from manufacturing.calculations import population_doublings
from manufacturing.models import Batch, CultureEvent, EventKind, Flask, FlaskStatus, ReagentUse


@dataclass(frozen=True)
class Due:
    what: str
    at: dt.datetime
    overdue: bool


def _latest(events: list[CultureEvent], *kinds: str) -> CultureEvent | None:
    found = [e for e in events if e.kind in kinds]
    return max(found, key=lambda e: (e.occurred_at, e.pk)) if found else None


def flask_due(flask: Flask, events: list[CultureEvent], now: dt.datetime | None = None) -> list[Due]:
    """What the flask needs next by its protocol: feed, observation, passage (from events already loaded)."""
    if flask.status != FlaskStatus.IN_CULTURE:
        return []
    now = now or timezone.now()
    protocol = flask.batch.protocol
    fed = _latest(events, EventKind.FEED, EventKind.SEED)
    seen = _latest(events, EventKind.OBSERVATION, EventKind.SEED)
    due = []
    if fed is not None:
        at = fed.occurred_at + dt.timedelta(hours=float(protocol.feed_interval_hours))
        due.append(Due("Feed", at, at <= now))
    if seen is not None:
        at = seen.occurred_at + dt.timedelta(hours=float(protocol.observation_interval_hours))
        due.append(Due("Observe", at, at <= now))
    observed = _latest(events, EventKind.OBSERVATION)
    if observed is not None and (observed.confluence_percent or 0) >= protocol.passage_confluence_percent:
        due.append(Due(f"Passage ({observed.confluence_percent} % confluent)", observed.occurred_at, True))
    return sorted(due, key=lambda d: d.at)


def _events_prefetch() -> Prefetch:
    return Prefetch(
        "events",
        queryset=CultureEvent.objects.select_related("recorded_by")
        .prefetch_related(Prefetch("reagent_uses", queryset=ReagentUse.objects.select_related("lot__reagent")))
        .order_by("occurred_at", "id"),
    )


def flask_for_page(code: str) -> Flask:
    return (
        Flask.objects.select_related("batch", "batch__protocol", "batch__subject", "vessel_type", "parent")
        .prefetch_related(_events_prefetch(), "children")
        .get(code=code)
    )


def batch_for_page(lot_number: str) -> Batch:
    flasks = (
        Flask.objects.select_related("vessel_type")
        .prefetch_related(_events_prefetch())
        .order_by("passage_number", "code")
    )
    return (
        Batch.objects.select_related("subject", "protocol", "aspirate", "started_by", "harvest")
        .prefetch_related(Prefetch("flasks", queryset=flasks))
        .get(lot_number=lot_number)
    )


def batches_for_list() -> QuerySet[Batch]:
    return Batch.objects.select_related("subject").order_by("-started_at")


@dataclass
class LineageNode:
    flask: Flask
    children: list[LineageNode] = field(default_factory=list)


def lineage(flasks: list[Flask]) -> list[LineageNode]:
    """The passage tree: P0 flasks at the roots, each child under its parent."""
    nodes = {f.pk: LineageNode(f) for f in flasks}
    roots: list[LineageNode] = []
    for flask in flasks:
        parent = nodes.get(flask.parent_id) if flask.parent_id else None
        (parent.children if parent else roots).append(nodes[flask.pk])
    return roots


@dataclass(frozen=True)
class GrowthPoint:
    day: int
    cumulative_pd: Decimal
    viable_cells: int
    label: str


def growth_curve(batch: Batch, flasks: list[Flask]) -> list[GrowthPoint]:
    """Cumulative population doublings (from P1 on) and viable cells by culture day, pooled per passage level.

    At each passage level the cells counted are summed over its flasks and compared with the
    cells seeded into them, so the curve describes the batch and not one flask.
    """
    if batch.seeded_at is None:
        return []
    seeded: dict[int, int] = defaultdict(int)
    counted: dict[int, int] = defaultdict(int)
    last_day: dict[int, int] = {}
    for flask in flasks:
        seeded[flask.passage_number] += flask.cells_seeded
        for event in flask.events.all():
            if event.kind == EventKind.PASSAGE and event.viable_cells:
                counted[flask.passage_number] += event.viable_cells
                day = batch.culture_day(event.occurred_at) or 0
                last_day[flask.passage_number] = max(last_day.get(flask.passage_number, 0), day)
    harvest = getattr(batch, "harvest", None)
    points = [GrowthPoint(0, Decimal("0"), seeded.get(0, 0), "seeded P0")]
    cumulative = Decimal("0")
    for level in sorted(counted):
        # P0 holds mononuclear cells; doublings are counted from P1 on.
        if level > 0:
            cumulative += population_doublings(seeded[level], counted[level])
        points.append(GrowthPoint(last_day[level], cumulative, counted[level], f"passage P{level}→P{level + 1}"))
    if harvest is not None:
        final_level = max(seeded)
        harvested_seeded = (
            sum(f.cells_seeded for f in flasks if f.status == FlaskStatus.HARVESTED) or seeded[final_level]
        )
        if final_level > 0:
            cumulative += population_doublings(harvested_seeded, harvest.viable_cells)
        points.append(
            GrowthPoint(batch.culture_day(harvest.harvested_at) or 0, cumulative, harvest.viable_cells, "harvest")
        )
    return points


def log10_cells(cells: int) -> float:
    return math.log10(cells) if cells > 0 else 0.0
