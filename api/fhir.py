"""FHIR R5 export: the product bag as a BiologicallyDerivedProduct, its infusion as a Procedure.

Subjects stay pseudonymous: they are referenced by their study code (an identifier on a
logical reference), never by a name or a date of birth — Stroma holds neither a name nor
exports the date. Staff are referenced by their username, with their printed name.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Max

from manufacturing.models import FinalProduct, FlaskStatus, Infusion, InfusionStatus, ProductStatus

SUBJECT_SYSTEM = "urn:stroma:subject-code"
STAFF_SYSTEM = "urn:stroma:username"
PRODUCT_SYSTEM = "urn:stroma:product-code"
ASPIRATE_SYSTEM = "urn:stroma:aspirate-code"
INFUSION_SYSTEM = "urn:stroma:infusion"
PROPERTY_SYSTEM = "urn:stroma:product-property"
LOCAL_CODES = "urn:stroma:code"
UCUM = "http://unitsofmeasure.org"
AUTOLOGOUS_EXTENSION = "urn:stroma:fhir:StructureDefinition:autologous-use"


def prune(value: Any) -> Any:
    """FHIR JSON has no nulls and no empty elements: drop them."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [item for item in (prune(v) for v in value) if item not in (None, "", [], {})]
    return value


def instant(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _number(value: Decimal | int) -> float | int:
    return value if isinstance(value, int) else float(value)


def subject_reference(code: str) -> dict[str, Any]:
    return {"type": "Patient", "identifier": {"system": SUBJECT_SYSTEM, "value": code}, "display": code}


def staff_reference(user: Any) -> dict[str, Any]:
    return {
        "type": "Practitioner",
        "identifier": {"system": STAFF_SYSTEM, "value": user.username},
        "display": user.printed_name,
    }


def _property(code: str, text: str, **value: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": PROPERTY_SYSTEM, "code": code}], "text": text}, **value}


def _processing(product: FinalProduct) -> str:
    batch = product.batch
    harvest = getattr(batch, "harvest", None)
    passage = batch.flasks.filter(status=FlaskStatus.HARVESTED).aggregate(p=Max("passage_number"))["p"]
    steps = [f"mononuclear cells isolated from aspirate {batch.aspirate.code} ({instant(batch.started_at)})"]
    if batch.seeded_at:
        steps.append(f"culture-expanded from {instant(batch.seeded_at)}")
    if harvest is not None:
        steps.append(f"harvested at P{passage or 0} ({instant(harvest.harvested_at)})")
    steps.append(f"formulated in {product.volume_ml} mL ({instant(product.formulated_at)})")
    return "; ".join(steps)


def biologically_derived_product(product: FinalProduct) -> dict[str, Any]:
    batch, aspirate = product.batch, product.batch.aspirate
    available = product.status in {ProductStatus.FORMULATED, ProductStatus.ISSUED, ProductStatus.AT_WARD}
    return prune(
        {
            "resourceType": "BiologicallyDerivedProduct",
            "id": product.code,
            "extension": [{"url": AUTOLOGOUS_EXTENSION, "valueBoolean": True}],
            "identifier": [{"system": PRODUCT_SYSTEM, "value": product.code}],
            "productCategory": {"system": "http://hl7.org/fhir/product-category", "code": "cells", "display": "Cells"},
            "productCode": {
                "coding": [
                    {
                        "system": LOCAL_CODES,
                        "code": "autologous-bm-msc",
                        "display": "Autologous bone-marrow mesenchymal stromal cells",
                    }
                ],
                "text": f"Autologous bone-marrow MSC — {product.statement}",
            },
            "productStatus": {
                "system": "http://hl7.org/fhir/biologicallyderived-product-status",
                "code": "available" if available else "unavailable",
            },
            "biologicalSourceEvent": {"system": ASPIRATE_SYSTEM, "value": aspirate.code},
            "collection": {
                "collector": staff_reference(aspirate.collected_by),
                "source": subject_reference(batch.subject.code),
                "collectedDateTime": instant(aspirate.collected_at),
            },
            "storageTempRequirements": {
                "low": {"value": 2, "unit": "°C", "system": UCUM, "code": "Cel"},
                "high": {"value": 8, "unit": "°C", "system": UCUM, "code": "Cel"},
            },
            "expirationDate": instant(product.expires_at),
            "property": [
                _property(
                    "intended-use",
                    "Intended use",
                    valueCodeableConcept={
                        "coding": [{"system": LOCAL_CODES, "code": "autologous", "display": "Autologous use"}],
                        "text": product.statement,
                    },
                ),
                _property("processing", "Processing", valueString=_processing(product)),
                _property("batch", "Batch (lot number)", valueString=batch.lot_number),
                _property("batch-status", "Batch status", valueString=batch.get_status_display()),
                _property(
                    "viable-cells",
                    "Viable cells in the bag",
                    valueQuantity={"value": product.total_viable_cells, "unit": "cells"},
                ),
                _property(
                    "volume",
                    "Volume",
                    valueQuantity={"value": _number(product.volume_ml), "unit": "mL", "system": UCUM, "code": "mL"},
                ),
            ],
        }
    )


def procedure(infusion: Infusion) -> dict[str, Any]:
    dose = infusion.dose
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(infusion.pk),
        "identifier": [{"system": INFUSION_SYSTEM, "value": str(infusion.pk)}],
        "status": "completed" if infusion.status == InfusionStatus.COMPLETED else "in-progress",
        "code": {
            "coding": [{"system": LOCAL_CODES, "code": "msc-infusion", "display": "Infusion of autologous MSC"}],
            "text": "Intravenous infusion of autologous mesenchymal stromal cells",
        },
        "subject": subject_reference(infusion.subject.code),
        "recorded": instant(infusion.bedside_check.checked_at),
        "performer": [
            {"function": {"text": "administered"}, "actor": staff_reference(infusion.administered_by)},
            {"function": {"text": "witnessed"}, "actor": staff_reference(infusion.witnessed_by)},
        ],
        "used": [
            {
                "reference": {
                    "reference": f"BiologicallyDerivedProduct/{infusion.product.code}",
                    "type": "BiologicallyDerivedProduct",
                    "display": infusion.product.code,
                }
            }
        ],
        "note": [
            {
                "text": f"Prescribed {dose.volume_ml} mL = {dose.achieved_cells} viable cells "
                f"({dose.achieved_million_per_kg} × 10⁶/kg for {dose.weight_kg} kg), verified by a second person."
            }
        ],
    }
    if infusion.started_at:
        resource["occurrencePeriod"] = {"start": instant(infusion.started_at), "end": instant(infusion.ended_at)}
    if infusion.volume_infused_ml is not None:
        resource["note"].append({"text": f"Volume infused: {infusion.volume_infused_ml} mL."})
    if infusion.adverse_reaction:
        resource["complication"] = [
            {
                "concept": {
                    "text": f"{infusion.adverse_reaction} (grade {infusion.adverse_grade}); "
                    f"action: {infusion.adverse_action}"
                }
            }
        ]
    return prune(resource)
