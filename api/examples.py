"""Worked examples for the schema: one per operation, in the cleanroom's own words and numbers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample

T = "2026-03-02T10:42:00+03:30"
SIG = {"username": "quinn", "password": "••••••••", "meaning": "released", "reason": "all criteria met"}

STUDY = {
    "code": "RA-MSC",
    "registry_id": "NCT03333681",
    "title": "Autologous MSC in rheumatoid arthritis",
    "phase": "1/2",
    "sponsor": "Royan Institute",
    "planned_enrolment": 30,
    "created_at": T,
}
SUBJECT = {
    "code": "RAMSC-001",
    "study": "RA-MSC",
    "protocol_version": 1,
    "sequence": 1,
    "sex": "F",
    "status": "enrolled",
    "status_reason": "",
    "screening_date": "2026-02-20",
    "consent_date": "2026-02-19",
    "registered_at": T,
}
ASPIRATE = {
    "code": "AS-RAMSC-001-1",
    "subject": "RAMSC-001",
    "study": "RA-MSC",
    "status": "accepted",
    "collected_at": "2026-03-01T08:10:00+03:30",
    "site": "posterior iliac crest",
    "volume_ml": "15.0",
    "anticoagulant": "heparin",
    "dispatched_at": "2026-03-01T08:20:00+03:30",
    "received_at": "2026-03-01T10:05:00+03:30",
    "receipt_temperature_c": "21.0",
    "container_intact": True,
    "hours_in_transit": "1.92",
    "receipt_findings": "",
    "receipt_reason": "",
}
BATCH = {
    "lot_number": "RAMSC-001-B1",
    "subject": "RAMSC-001",
    "study": "RA-MSC",
    "aspirate": "AS-RAMSC-001-1",
    "protocol_version": 1,
    "status": "in_culture",
    "status_reason": "",
    "started_at": "2026-03-01T11:00:00+03:30",
    "mnc_total_cells": 200000000,
    "mnc_viability_percent": "92.0",
    "seeded_at": "2026-03-01T12:00:00+03:30",
    "specification_version": None,
    "testing_started_at": None,
    "decided_at": None,
    "needs_rereview": False,
}
FLASK = {
    "code": "FL-000012",
    "batch": "RAMSC-001-B1",
    "parent": None,
    "vessel_type": "T75",
    "passage_number": 0,
    "status": "in_culture",
    "seeded_at": "2026-03-01T12:00:00+03:30",
    "cells_seeded": 11250000,
    "medium_volume_ml": "15.0",
    "seeding_density_per_cm2": 150000,
    "density_warning_reason": "",
    "cumulative_pd_at_seeding": "0.00",
}
EVENT = {
    "id": 41,
    "flask": "FL-000012",
    "batch": "RAMSC-001-B1",
    "kind": "feed",
    "occurred_at": T,
    "recorded_at": T,
    "recorded_by": "olivia",
    "backdate_reason": "",
    "note": "",
    "volume_ml": "15.0",
    "confluence_percent": None,
    "morphology_ok": None,
    "turbidity": None,
    "colour_change": None,
    "microscopy_contamination": None,
    "total_cells": None,
    "viable_cells": None,
    "viability_percent": None,
    "population_doublings": None,
    "doubling_time_hours": None,
    "reagent_lots": ["RL-00001", "RL-00002"],
}
LOT = {
    "code": "RL-00001",
    "reagent": "MEM-alpha",
    "category": "medium",
    "supplier": "Acme Bio",
    "lot_number": "MA-2291",
    "expiry_date": "2026-09-30",
    "status": "released",
    "status_reason": "certificate of analysis reviewed",
    "received_at": T,
    "received_by": "olivia",
}
QC_RESULT = {
    "id": 7,
    "batch": "RAMSC-001-B1",
    "criterion": 9,
    "attribute": "Viability",
    "sample": None,
    "numeric_value": "94.0000",
    "qualifier": "",
    "qualitative_outcome": "",
    "unit": "%",
    "display_value": "94 %",
    "method": "7-AAD flow cytometry",
    "instrument": "FACSCanto II",
    "analyst": "Q. C. Analyst",
    "tested_at": T,
    "entered_by": "olivia",
    "entered_at": T,
    "flag": "pass",
    "flag_explanation": "94 % (required ≥ 70 %)",
    "status": "valid",
    "status_reason": "",
    "retest_of": None,
    "investigation": None,
}
DEVIATION = {
    "code": "DEV-2026-0003",
    "source": "contamination",
    "status": "open",
    "description": "Flask FL-000012 of batch RAMSC-001-B1: turbidity.",
    "subject_code": "RAMSC-001",
    "record_type": "flask",
    "record_id": 12,
    "opened_by": "olivia",
    "opened_at": T,
}
PRODUCT = {
    "code": "PB-RAMSC-001-B1",
    "batch": "RAMSC-001-B1",
    "subject": "RAMSC-001",
    "study": "RA-MSC",
    "status": "at_ward",
    "status_reason": "",
    "formulated_at": T,
    "total_viable_cells": 44000000,
    "volume_ml": "10.0",
    "expires_at": "2026-03-02T16:42:00+03:30",
    "storage": "2–8 °C",
    "statement": "FOR AUTOLOGOUS USE ONLY",
    "transport_flags": "",
}
DOSE = {
    "id": 3,
    "product": "PB-RAMSC-001-B1",
    "subject": "RAMSC-001",
    "status": "calculated",
    "status_reason": "",
    "weight_kg": "40.0",
    "weight_measured_on": "2026-03-01",
    "target_million_per_kg": "1.000",
    "concentration_per_ml": "4400000.00",
    "cells_to_give": "40000000",
    "volume_ml": "9.10",
    "achieved_cells": "40040000",
    "achieved_million_per_kg": "1.001",
    "endotoxin_limit_eu_per_ml": "21.978",
    "endotoxin_measured_eu_per_ml": "0.0500",
    "calculated_by": "clara",
    "calculated_at": T,
    "verified_by": None,
    "verified_at": None,
}
CUSTODY = {
    "id": 5,
    "label": "FL-000012",
    "item_kind": "FL",
    "subject_code": "RAMSC-001",
    "handed_over_by": "Olivia Operator",
    "received_by": "Oscar Operator",
    "location": "Incubator 2",
    "occurred_at": T,
    "temperature_c": "37.0",
    "container_condition": "intact",
    "note": "",
    "recorded_by": "olivia",
    "recorded_at": T,
}
INFUSION = {
    "id": 1,
    "product": "PB-RAMSC-001-B1",
    "subject": "RAMSC-001",
    "dose": 3,
    "status": "completed",
    "administered_by": "clara",
    "witnessed_by": "colin",
    "started_at": T,
    "ended_at": "2026-03-02T11:12:00+03:30",
    "volume_infused_ml": "9.1",
    "vitals_before": {"heart_rate_bpm": "72", "temperature_c": "36.8"},
    "vitals_after": {"heart_rate_bpm": "74", "temperature_c": "36.9"},
    "adverse_reaction": "",
    "adverse_grade": None,
    "adverse_action": "",
}
FOLLOW_UP_RESULT = {
    "id": 2,
    "sample": "BL-RAMSC-001-M3",
    "subject": "RAMSC-001",
    "study": "RA-MSC",
    "visit": "Month 3",
    "visit_month": 3,
    "analyte": "CRP",
    "unit": "mg/L",
    "value": "4.2000",
    "entered_by": "clara",
    "entered_at": T,
}
REMINDER = {
    "id": 11,
    "kind": "flask_feed_due",
    "item_code": "FL-000012",
    "subject_code": "RAMSC-001",
    "title": "Feed flask FL-000012",
    "audience_role": "Cleanroom operator",
    "due_at": T,
    "status": "open",
    "created_at": T,
    "acknowledged_at": None,
    "snoozed_until": None,
    "escalated_at": None,
    "resolved_at": None,
    "resolution": "",
}
TOKEN = {
    "id": 4,
    "name": "Cleanroom tablet 2",
    "role": "Cleanroom operator",
    "prefix": "stroma_Zx8Kq",
    "owner": "olivia",
    "created_at": T,
    "revoked_at": None,
    "revoke_reason": "",
}
LOT_PAYLOADS = ["S1.RL-00001.Q4ZVK2M7TA3HXW5N", "S1.RL-00002.B7PLD3XJQ2R6NMCF"]


def read(name: str, value: dict[str, Any]) -> list[OpenApiExample]:
    return [OpenApiExample(name, value=value, response_only=True, status_codes=["200"])]


def step(name: str, request: dict[str, Any], response: Any, *, status: str = "201") -> list[OpenApiExample]:
    return [
        OpenApiExample(name, value=request, request_only=True),
        OpenApiExample(f"{name} (recorded)", value=response, response_only=True, status_codes=[status]),
    ]
