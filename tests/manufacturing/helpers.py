"""Arrange helpers for manufacturing tests: an accepted aspirate, released lots, a seeded batch."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone

from lims.signatures import SignatureRequest
from manufacturing.models import Batch, Flask, Reagent, ReagentLot, Specification, VesselType
from manufacturing.services.culture import Seeding, batch_harvest, batch_seed, batch_start
from manufacturing.services.lots import reagent_lot_receive, reagent_lot_release
from manufacturing.services.release import (
    ResultEntry,
    criteria_from_reference,
    qc_result_record,
    specification_approve,
    specification_create,
)
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
    return batch_start(aspirate=aspirate, acting_user=operator, mnc_total_cells=200_000_000, mnc_viability_percent="92")


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


REFERENCE = Path(__file__).resolve().parents[2] / "samples" / "data" / "nct03333681-protocol.json"


def approved_specification(study: Any, qa: Any, password: str, *, conditional: bool = False) -> Specification:
    existing = Specification.objects.filter(study=study, status="approved").first()
    if existing is not None:
        return existing
    rows = criteria_from_reference(json.loads(REFERENCE.read_text())["release_spec"])
    spec = specification_create(
        study=study,
        acting_user=qa,
        criteria=rows,
        change_summary="ISCT-based spec v1",
        allows_conditional_release=conditional,
    )
    return specification_approve(
        specification=spec,
        acting_user=qa,
        signature=SignatureRequest(
            username=qa.username, password=password, meaning="approved", reason="specification approved"
        ),
    )


def harvested_batch(batch: Batch, operator: Any, lots: list[ReagentLot]) -> Batch:
    """Two T225 flasks at 1.5×10⁵ cells/cm², harvested with 44×10⁶ viable cells (ceiling 45×10⁶)."""
    seeded_flasks(batch, operator, lots, count=2, cells=33_750_000, vessel_name="T225")
    batch_harvest(batch=batch, acting_user=operator, viable_cells=44_000_000, viability_percent="94", volume_ml="50")
    batch.refresh_from_db()
    return batch


PASSING = {
    "CD73": ("98.5", "%"),
    "CD90": ("99.1", "%"),
    "CD105": ("97.0", "%"),
    "CD45": ("0.4", "%"),
    "CD34": ("0.2", "%"),
    "CD14 or CD11b": ("0.8", "%"),
    "CD79a or CD19": ("0.3", "%"),
    "HLA-DR": ("0.5", "%"),
    "Viability": ("94", "%"),
    "Endotoxin": ("<0.05", "EU/mL"),
}
QUALITATIVE_PASS = {"Sterility": "no growth", "Gram stain": "negative", "Mycoplasma": "not detected"}


def enter_passing_results(batch: Batch, analyst_user: Any, *, skip: tuple[str, ...] = ()) -> None:
    for criterion in batch.specification.criteria.all():
        if criterion.attribute in skip:
            continue
        if criterion.attribute in PASSING:
            value, unit = PASSING[criterion.attribute]
            entry = ResultEntry(value=value, unit=unit, analyst="Q. C. Analyst", method=criterion.method)
        elif criterion.attribute in QUALITATIVE_PASS:
            entry = ResultEntry(outcome=QUALITATIVE_PASS[criterion.attribute], analyst="Q. C. Analyst")
        else:
            continue
        qc_result_record(batch=batch, criterion=criterion, acting_user=analyst_user, entry=entry)


def released_batch(study: Any, clinician: Any, operator: Any, qa: Any, releasing_qa: Any, password: str) -> Batch:
    """A batch made by `operator`, tested, and released by `releasing_qa` (who did not make it)."""
    from manufacturing.services.release import batch_release_decide, batch_start_release_testing

    approved_specification(study, qa, password)
    lots = [released_lot("MEM-alpha", operator, qa), released_lot("Human platelet lysate", operator, qa)]
    batch = harvested_batch(
        started_batch(accepted_aspirate(study, clinician, operator, password), operator), operator, lots
    )
    batch = batch_start_release_testing(batch=batch, acting_user=operator)
    enter_passing_results(batch, operator)
    return batch_release_decide(
        batch=batch,
        acting_user=releasing_qa,
        decision="released",
        signature=SignatureRequest(
            username=releasing_qa.username, password=password, meaning="released", reason="all criteria met"
        ),
    )


def product_at_ward(
    batch: Batch, operator: Any, clinician: Any, verifier: Any, password: str, *, verified: bool = True
) -> Any:
    """Formulate 44×10⁶ viable cells in 10 mL, calculate 1.0×10⁶/kg for 40 kg, verify, issue, receive at the ward."""
    from lims.labels import label_payload
    from manufacturing.services.infusion import (
        Handover,
        dose_calculate,
        dose_verify,
        product_formulate,
        product_issue,
        product_receive_at_ward,
    )

    product = product_formulate(batch=batch, acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
    dose = dose_calculate(
        product=product,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    if verified:
        dose_verify(
            dose=dose,
            acting_user=verifier,
            signature=SignatureRequest(
                username=verifier.username, password=password, meaning="verified", reason="calculation checked"
            ),
        )
    product_issue(product=product, acting_user=operator, handover=Handover(courier="Hamid", temperature_c="5"))
    return product_receive_at_ward(
        product=product,
        acting_user=clinician,
        scanned_payload=label_payload(product.code),
        handover=Handover(courier="Hamid", temperature_c="5"),
        ward="Rheumatology ward",
    )


NORMAL_VITALS = {
    "heart_rate_bpm": "72",
    "systolic_mmhg": "124",
    "diastolic_mmhg": "78",
    "temperature_c": "36.8",
    "spo2_percent": "98",
    "respiratory_rate": "14",
}


def infused(product: Any, clinician: Any, witness: Any, password: str) -> Any:
    """Pass the bedside check with two clinicians, then record a 25-minute infusion started 5 minutes later."""
    import time_machine

    from lims.labels import label_payload
    from manufacturing.services.infusion import InfusionRecord, bedside_verify, infusion_complete

    def sign(user: Any, meaning: str) -> SignatureRequest:
        return SignatureRequest(username=user.username, password=password, meaning=meaning, reason="at the bedside")

    infusion = bedside_verify(
        wristband_payload=label_payload(f"WB-{product.batch.subject.code}"),
        bag_payload=label_payload(product.code),
        acting_user=clinician,
        second_clinician=sign(witness, "witnessed"),
    )
    started = timezone.now() + dt.timedelta(minutes=5)
    with time_machine.travel(started + dt.timedelta(minutes=25)):
        return infusion_complete(
            infusion=infusion,
            acting_user=clinician,
            record=InfusionRecord(
                started_at=started,
                ended_at=started + dt.timedelta(minutes=25),
                volume_infused_ml="9.1",
                vitals_before=NORMAL_VITALS,
                vitals_after=NORMAL_VITALS,
            ),
            administered=sign(clinician, "administered"),
            witnessed=sign(witness, "witnessed"),
        )
