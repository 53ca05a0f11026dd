"""Arrange helpers for manufacturing tests: an accepted aspirate, released lots, a seeded batch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from manufacturing.models import Batch, Flask, Reagent, ReagentLot, VesselType
from manufacturing.services.culture import Seeding, batch_seed, batch_start
from manufacturing.services.lots import reagent_lot_receive, reagent_lot_release
from samples.models import Aspirate
from samples.services import aspirate_receive
from tests.samples.helpers import aspirate_in_transit, enrolled_subject, tube_payload

VESSEL_AREAS = {"T25": 25, "T75": 75, "T175": 175, "T225": 225, "CellSTACK-1": 636}
REAGENT_CATEGORIES = {"MEM-alpha": "medium", "Human platelet lysate": "supplement", "TrypLE Select": "detachment"}


def vessel(name: str = "T75") -> VesselType:
    """Reference vessels come from a data migration; transactional tests flush them, so re-create."""
    return VesselType.objects.get_or_create(name=name, defaults={"growth_area_cm2": Decimal(VESSEL_AREAS[name])})[0]


def reagent(name: str) -> Reagent:
    return Reagent.objects.get_or_create(name=name, defaults={"category": REAGENT_CATEGORIES[name]})[0]


def released_lot(
    name: str, operator: Any, qa: Any, *, lot_number: str | None = None, days_left: int = 180
) -> ReagentLot:
    lot = reagent_lot_receive(
        reagent=reagent(name),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number=lot_number or f"{name[:4].upper()}-{ReagentLot.objects.count() + 1}",
        expiry_date=timezone.localdate() + dt.timedelta(days=days_left),
    )
    return reagent_lot_release(lot=lot, acting_user=qa, reason="certificate of analysis reviewed")


def accepted_aspirate(study: Any, clinician: Any, operator: Any, password: str) -> Aspirate:
    subject = enrolled_subject(study, clinician, password)
    aspirate = aspirate_in_transit(subject, clinician, hours_ago=3)
    return aspirate_receive(
        aspirate=aspirate,
        acting_user=operator,
        scanned_payload=tube_payload(aspirate),
        received_at=aspirate.collected_at + dt.timedelta(hours=2),
        temperature_c="21",
        container_intact=True,
        courier="Hamid",
    )


def started_batch(aspirate: Aspirate, operator: Any) -> Batch:
    return batch_start(aspirate=aspirate, acting_user=operator, mnc_total_cells=60_000_000, mnc_viability_percent="92")


def seeded_flasks(
    batch: Batch,
    operator: Any,
    lots: list[ReagentLot],
    *,
    count: int = 2,
    cells: int = 11_250_000,
    vessel_name: str = "T75",
) -> list[Flask]:
    """P0 at 1.5×10⁵ cells/cm² in T75 flasks (11.25×10⁶ cells each), the protocol's typical density."""
    return batch_seed(
        batch=batch,
        acting_user=operator,
        flask_count=count,
        lots=lots,
        seeding=Seeding(vessel_type=vessel(vessel_name), cells_per_flask=cells, medium_volume_ml="15"),
    )
