"""Demo batches for `manage.py load_demo`, made through the same services as the pages.

Each batch is at a different point of the process, so the demo shows every page with content:
mid-culture (day 12, a passage done, a feed due), at the harvest window, ready for release,
blocked by an out-of-specification result, released with its product at the ward, and infused.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.utils import timezone

from lims.labels import label_payload
from lims.signatures import SignatureRequest
from manufacturing.models import Batch, Reagent, ReagentLot, Specification, VesselType
from manufacturing.services import culture, infusion, lots, release
from samples.models import Aspirate
from samples.services import aspirate_collect, aspirate_dispatch, aspirate_receive

LATE = "demo data: the history of a culture that began before the demo was installed"
REFERENCE = Path(__file__).resolve().parents[1] / "samples" / "data" / "nct03333681-protocol.json"
VITALS: dict[str, object] = {
    "heart_rate_bpm": "76",
    "systolic_mmhg": "122",
    "diastolic_mmhg": "79",
    "temperature_c": "36.7",
    "spo2_percent": "98",
    "respiratory_rate": "15",
}


def _sign(user: Any, password: str, meaning: str, reason: str) -> SignatureRequest:
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason=reason)


def demo_lots(operator: Any, qa: Any) -> dict[str, ReagentLot]:
    """One released lot of each reagent the culture uses, booked in by the operator and released by QA."""
    made = {}
    today = timezone.localdate()
    for name, number in (
        ("MEM-alpha", "MA-2611"),
        ("Human platelet lysate", "HPL-0926"),
        ("TrypLE Select", "TL-3318"),
        ("PBS without Ca/Mg", "PBS-771"),
    ):
        lot = lots.reagent_lot_receive(
            reagent=Reagent.objects.get(name=name),
            acting_user=operator,
            supplier="Demo supplier",
            lot_number=number,
            expiry_date=today + dt.timedelta(days=240),
        )
        made[name] = lots.reagent_lot_release(lot=lot, acting_user=qa, reason="certificate of analysis reviewed")
    return made


def demo_specification(study: Any, qa: Any, password: str) -> Specification:
    rows = release.criteria_from_reference(json.loads(REFERENCE.read_text())["release_spec"])
    spec = release.specification_create(
        study=study,
        acting_user=qa,
        criteria=rows,
        allows_conditional_release=True,
        change_summary="ISCT minimal criteria, USP <71>/<85>, protocol passage limit",
    )
    return release.specification_approve(
        specification=spec, acting_user=qa, signature=_sign(qa, password, "approved", "release specification v1")
    )


def accepted_aspirate(subject: Any, clinician: Any, operator: Any, *, days_ago: float) -> Aspirate:
    collected = timezone.now() - dt.timedelta(days=days_ago)
    aspirate = aspirate_collect(subject=subject, acting_user=clinician, collected_at=collected, volume_ml="18.0")
    aspirate = aspirate_dispatch(
        aspirate=aspirate,
        acting_user=clinician,
        courier="Hamid (courier)",
        temperature_c="21.0",
        dispatched_at=collected + dt.timedelta(minutes=20),
    )
    return aspirate_receive(
        aspirate=aspirate,
        acting_user=operator,
        scanned_payload=label_payload(aspirate.code),
        received_at=collected + dt.timedelta(hours=2),
        temperature_c="20.5",
        container_intact=True,
        courier="Hamid (courier)",
    )


def grown_batch(
    aspirate: Aspirate, operator: Any, used: dict[str, ReagentLot], *, culture_days: int, passage_on_day: int
) -> Batch:
    """Seed P0, feed every 3.5 days, passage once into P1 flasks, and keep feeding up to today."""
    assert aspirate.received_at is not None
    day0: dt.datetime = aspirate.received_at + dt.timedelta(hours=1)
    media = [used["MEM-alpha"], used["Human platelet lysate"]]
    batch = culture.batch_start(
        aspirate=aspirate,
        acting_user=operator,
        mnc_total_cells=320_000_000,
        mnc_viability_percent="93.5",
        started_at=day0,
        backdate_reason=LATE,
    )
    parents = culture.batch_seed(
        batch=batch,
        acting_user=operator,
        flask_count=2,
        lots=media,
        occurred_at=day0 + dt.timedelta(minutes=30),
        backdate_reason=LATE,
        seeding=culture.Seeding(
            vessel_type=VesselType.objects.get(name="T175"), cells_per_flask=26_250_000, medium_volume_ml="30"
        ),
    )
    for flask in parents:
        for early in (3, 6):
            if early < passage_on_day:
                culture.flask_feed(
                    flask=flask,
                    acting_user=operator,
                    volume_ml="30",
                    lots=media,
                    occurred_at=day0 + dt.timedelta(days=early),
                    backdate_reason=LATE,
                )
        culture.flask_observe(
            flask=flask,
            acting_user=operator,
            occurred_at=day0 + dt.timedelta(days=passage_on_day, hours=-2),
            backdate_reason=LATE,
            observation=culture.Observation(confluence_percent=80, morphology_ok=True),
        )
        culture.flask_passage(
            flask=flask,
            acting_user=operator,
            occurred_at=day0 + dt.timedelta(days=passage_on_day),
            backdate_reason=LATE,
            passage=culture.Passage(
                detachment_lot=used["TrypLE Select"],
                total_cells=9_400_000,
                viable_cells=8_900_000,
                children=2,
                media_lots=media,
                seeding=culture.Seeding(
                    vessel_type=VesselType.objects.get(name="CellSTACK-1"),
                    cells_per_flask=1_900_000,
                    medium_volume_ml="120",
                ),
            ),
        )
    feed_days: list[float] = []
    next_feed = passage_on_day + 3.5
    while next_feed < culture_days - 3.4:  # the last feed leaves the next one due about now
        feed_days.append(next_feed)
        next_feed += 3.5
    for child in batch.flasks.filter(passage_number=1):
        for day in feed_days:
            culture.flask_feed(
                flask=child,
                acting_user=operator,
                volume_ml="120",
                lots=media,
                occurred_at=day0 + dt.timedelta(days=day),
                backdate_reason=LATE,
            )
    batch.refresh_from_db()
    return batch


def harvest_and_test(batch: Batch, operator: Any, *, oos: bool = False) -> Batch:
    culture.batch_harvest(
        batch=batch,
        acting_user=operator,
        viable_cells=210_000_000,
        viability_percent="94.2",
        volume_ml="60",
        occurred_at=timezone.now() - dt.timedelta(hours=3),
        backdate_reason=LATE,
    )
    release.qc_sample_take(batch=batch, acting_user=operator, purpose="release testing")
    batch = release.batch_start_release_testing(batch=batch, acting_user=operator)
    values = {
        "CD73": "98.7",
        "CD90": "99.2",
        "CD105": "93.1" if oos else "97.4",
        "CD45": "0.6",
        "CD34": "0.3",
        "CD14 or CD11b": "0.9",
        "CD79a or CD19": "0.2",
        "HLA-DR": "0.7",
        "Viability": "94.2",
    }
    outcomes = {"Sterility": "no growth", "Gram stain": "negative", "Mycoplasma": "not detected"}
    assert batch.specification is not None
    for criterion in batch.specification.criteria.all():
        if criterion.attribute in values:
            entry = release.ResultEntry(
                value=values[criterion.attribute],
                unit="%",
                analyst="QC laboratory",
                method=criterion.method,
                instrument="Flow cytometer FC-2",
            )
        elif criterion.attribute == "Endotoxin":
            entry = release.ResultEntry(value="<0.05", unit="EU/mL", analyst="QC laboratory", method=criterion.method)
        elif criterion.attribute in outcomes:
            entry = release.ResultEntry(
                outcome=outcomes[criterion.attribute], analyst="QC laboratory", method=criterion.method
            )
        else:
            continue
        release.qc_result_record(batch=batch, criterion=criterion, acting_user=operator, entry=entry)
    return batch


def release_and_bring_to_ward(batch: Batch, *, users: dict[str, Any], password: str) -> Any:
    qa, operator, clara, colin = users["quinn"], users["olivia"], users["clara"], users["colin"]
    release.batch_release_decide(
        batch=batch,
        acting_user=qa,
        decision="released",
        signature=_sign(qa, password, "released", "all criteria met; audit trail reviewed"),
    )
    product = infusion.product_formulate(
        batch=batch, acting_user=operator, total_viable_cells=200_000_000, volume_ml="50"
    )
    dose = infusion.dose_calculate(
        product=product,
        acting_user=clara,
        weight_kg="64.5",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    infusion.dose_verify(
        dose=dose,
        acting_user=colin,
        signature=_sign(colin, password, "verified", "calculation checked against the label"),
    )
    infusion.product_issue(
        product=product,
        acting_user=operator,
        handover=infusion.Handover(courier="Hamid (courier)", temperature_c="5.0"),
    )
    return infusion.product_receive_at_ward(
        product=product,
        acting_user=clara,
        scanned_payload=label_payload(product.code),
        handover=infusion.Handover(courier="Hamid (courier)", temperature_c="5.5"),
        ward="Rheumatology day ward",
    )


def infuse(product: Any, *, users: dict[str, Any], password: str) -> None:
    clara, colin = users["clara"], users["colin"]
    check = infusion.bedside_verify(
        wristband_payload=label_payload(f"WB-{product.batch.subject.code}"),
        bag_payload=label_payload(product.code),
        acting_user=clara,
        second_clinician=_sign(colin, password, "witnessed", "checked together at the bedside"),
    )
    now = timezone.now()
    infusion.infusion_complete(
        infusion=check,
        acting_user=clara,
        record=infusion.InfusionRecord(
            started_at=now - dt.timedelta(minutes=4),
            ended_at=now,
            volume_infused_ml=product.doses.get(status="verified").volume_ml,
            vitals_before=VITALS,
            vitals_after=VITALS,
        ),
        administered=_sign(clara, password, "administered", "infused as prescribed"),
        witnessed=_sign(colin, password, "witnessed", "present throughout"),
    )
