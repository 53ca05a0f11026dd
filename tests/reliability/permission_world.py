"""The records the permission matrix acts on, and the request each route is sent with.

Every path names a real record in the state its step needs (a tube in transit to receive, a draft
to approve, a batch in release testing to release), and every body is what the page or the device
sends, so that the entitled role succeeds and a refusal of anyone else means something. The steps
that set the scene are done by helper colleagues (Oscar, Quentin, Colin, Cora), so that the people
in the matrix's columns are independent of what they are asked to check or sign.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from lims.labels import label_payload
from lims.models import ContainerCondition, Label, Reminder
from lims.roles import OPERATOR
from lims.services import custody_record
from lims.signatures import SignatureRequest
from manufacturing.models import Batch, QcResult
from manufacturing.services.infusion import (
    Handover,
    bedside_verify,
    dose_calculate,
    dose_verify,
    product_formulate,
    product_issue,
)
from manufacturing.services.lots import reagent_lot_receive
from manufacturing.services.release import (
    ResultEntry,
    batch_start_release_testing,
    criteria_from_reference,
    processing_session_open,
    qc_result_record,
    specification_create,
)
from samples.models import CriterionKind, ProtocolStatus
from samples.selectors import PARAMETER_GROUPS
from samples.services import (
    aspirate_collect,
    follow_up_sample_collect,
    study_create,
    subject_answer_eligibility,
    subject_register,
)
from tests.factories import subject_dates
from tests.manufacturing.helpers import (
    REFERENCE,
    accepted_aspirate,
    approved_specification,
    enter_passing_results,
    harvested_batch,
    product_at_ward,
    reagent,
    released_batch,
    released_lot,
    seeded_flasks,
    started_batch,
    vessel,
)
from tests.samples.helpers import aspirate_in_transit, enrolled_subject

Body = Callable[[Any], dict[str, Any]]


def _nothing(user: Any) -> dict[str, Any]:
    return {}


@dataclass
class Call:
    """One route's request: the path's parameters and the body, which may depend on who sends it."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    body: Body = _nothing


@dataclass
class People:
    operator: Any
    qa: Any
    clinician: Any
    lab_manager: Any
    outsider: Any
    second_operator: Any
    second_qa: Any
    second_clinician: Any
    third_clinician: Any
    password: str


def local(moment: dt.datetime) -> str:
    """A time as a tablet's datetime-local input sends it."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _signed(password: str, reason: str = "reviewed and signed", **extra: Any) -> Body:
    def body(user: Any) -> dict[str, Any]:
        return {"username": getattr(user, "username", ""), "password": password, "reason": reason, **extra}

    return body


def _api_signature(password: str, meaning: str, **extra: Any) -> Body:
    def body(user: Any) -> dict[str, Any]:
        signature = {"username": getattr(user, "username", ""), "password": password, "meaning": meaning}
        return {**extra, "signature": {**signature, "reason": "checked"}}

    return body


def _fixed(data: dict[str, Any]) -> Body:
    return lambda user: data


def _custody_form(code: str) -> dict[str, Any]:
    return {
        "scanned_payload": label_payload(code),
        "handed_over_by": "Oscar Operator",
        "received_by": "Courier",
        "location": "Cleanroom door",
        "occurred_at": local(timezone.now()),
        "temperature_c": "21.0",
        "container_condition": ContainerCondition.INTACT,
    }


def _result_row(batch: Batch, attribute: str, value: str) -> dict[str, str]:
    pk = batch.specification.criteria.get(attribute=attribute).pk
    return {f"c{pk}_analyst": "Q. C. Analyst", f"c{pk}_value": value, f"c{pk}_unit": "%"}


# --- Samples: study, protocol, subjects, tubes -----------------------------------------------------------


def _samples(p: People, study: Any) -> dict[str, Call]:
    current = study.protocol_versions.get(status=ProtocolStatus.APPROVED)
    revision = {name: str(getattr(current, name)) for _, rows in PARAMETER_GROUPS for name, _, _ in rows}
    # A second study whose first protocol version waits for its approval (the first study's revision would
    # be refused while a draft waits, so the draft to approve belongs to another study).
    data = json.loads(REFERENCE.read_text())
    data["study"] |= {"code": "RA-MSC2", "registry_id": "NCT00000002"}
    draft = study_create(acting_user=p.lab_manager, data=data, reason="second study set up")
    screening = subject_register(study=study, acting_user=p.second_clinician, sex="F", **subject_dates())
    answered = subject_register(study=study, acting_user=p.second_clinician, sex="F", **subject_dates(50))
    subject_answer_eligibility(
        subject=answered,
        acting_user=p.second_clinician,
        answers={c.pk: c.kind == CriterionKind.INCLUSION for c in answered.protocol.criteria.all()},
    )
    enrolled = enrolled_subject(study, p.second_clinician, p.password)
    sampled = enrolled_subject(study, p.second_clinician, p.password)
    baseline = sampled.protocol.visits.order_by("month").first()
    assert baseline is not None
    sample = follow_up_sample_collect(
        subject=sampled,
        visit=baseline,
        acting_user=p.second_clinician,
        collected_at=timezone.now() - dt.timedelta(days=1),
    )
    collected = aspirate_collect(
        subject=enrolled_subject(study, p.second_clinician, p.password),
        acting_user=p.second_clinician,
        collected_at=timezone.now() - dt.timedelta(hours=2),
        volume_ml="20",
    )
    in_transit = aspirate_in_transit(enrolled_subject(study, p.second_clinician, p.password), p.second_clinician)
    analyte = sampled.protocol.analytes.order_by("position").first()
    assert analyte is not None
    receipt = {
        "scanned_payload": label_payload(in_transit.code),
        "received_at": local(timezone.now()),
        "temperature_c": "21.5",
        "container_intact": "yes",
        "courier": "Carl Courier",
        "decision": "accept",
        "reason": "",
    }
    return {
        "samples:protocol-revise": Call(
            {"code": study.code},
            _fixed({**revision, "feed_interval_hours": "96", "change_summary": "Feed every 4 days"}),
        ),
        "samples:protocol-approve": Call({"pk": draft.pk}, _signed(p.password, "validated")),
        "samples:subject-register": Call(
            {"code": study.code}, _fixed({"sex": "F", **{k: v.isoformat() for k, v in subject_dates().items()}})
        ),
        "samples:eligibility-checklist": Call(
            {"code": screening.code},
            _fixed(
                {
                    f"criterion_{c.pk}": "yes" if c.kind == CriterionKind.INCLUSION else "no"
                    for c in screening.protocol.criteria.all()
                }
            ),
        ),
        "samples:eligibility-confirm": Call({"code": answered.code}, _signed(p.password, "all criteria met")),
        "samples:subject-screen-fail": Call({"code": screening.code}, _fixed({"reason": "RF negative"})),
        "samples:subject-withdraw": Call({"code": enrolled.code}, _fixed({"reason": "consent withdrawn"})),
        "samples:aspirate-collect": Call(
            {"code": enrolled.code},
            _fixed(
                {
                    "collected_at": local(timezone.now() - dt.timedelta(hours=1)),
                    "volume_ml": "18.5",
                    "site": "posterior iliac crest",
                    "anticoagulant": "heparin",
                }
            ),
        ),
        "samples:follow-up-collect": Call(
            {"code": enrolled.code},
            _fixed({"visit": baseline.pk, "collected_at": local(timezone.now() - dt.timedelta(hours=2))}),
        ),
        "samples:das28-record": Call(
            {"code": enrolled.code},
            _fixed(
                {
                    "visit": baseline.pk,
                    "assessed_on": timezone.localdate().isoformat(),
                    "tender": "3",
                    "swollen": "1",
                    "esr_mm_h": "12",
                    "patient_vas_mm": "30",
                }
            ),
        ),
        "samples:aspirate-dispatch": Call(
            {"code": collected.code},
            _fixed(
                {
                    "courier": "Carl Courier",
                    "temperature_c": "21",
                    "dispatched_at": local(collected.collected_at + dt.timedelta(minutes=30)),
                    "location": "Clinic",
                }
            ),
        ),
        "samples:aspirate-receive": Call({"code": in_transit.code}, _fixed(receipt)),
        "samples:receive-scan": Call({}, _fixed({"payload": label_payload(in_transit.code)})),
        "samples:follow-up-results": Call({"code": sample.code}, _fixed({f"analyte_{analyte.pk}": "4.2"})),
        "api:aspirate-receive": Call(
            {"code": in_transit.code},
            _fixed(
                {
                    "scanned_payload": label_payload(in_transit.code),
                    "received_at": timezone.now().isoformat(),
                    "temperature_c": "21.0",
                    "container_intact": True,
                    "courier": "Hamid",
                }
            ),
        ),
    }


# --- The cleanroom: lots, batches, flasks ---------------------------------------------------------------------


def _cleanroom(p: People, study: Any, lots: list[Any]) -> tuple[dict[str, Call], Any]:
    trypsin = released_lot("TrypLE Select", p.second_operator, p.second_qa)
    quarantined = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=p.second_operator,
        supplier="Acme Bio",
        lot_number="WAITING-1",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    recallable = released_lot("MEM-alpha", p.second_operator, p.second_qa, lot_number="RECALL-1")
    accepted = accepted_aspirate(study, p.second_clinician, p.second_operator, p.password)
    to_seed = started_batch(
        accepted_aspirate(study, p.second_clinician, p.second_operator, p.password), p.second_operator
    )
    culture = started_batch(
        accepted_aspirate(study, p.second_clinician, p.second_operator, p.password), p.second_operator
    )
    flask = seeded_flasks(culture, p.second_operator, lots, count=2)[0]
    lot_scans = "\r\n".join(label_payload(lot.code) for lot in lots) + "\r\n"
    passage = {
        "detachment_lot": label_payload(trypsin.code) + "\r\n",
        "media_lots": "",
        "total_cells": "4,200,000",
        "viable_cells": "4 000 000",
        "children": "2",
        "vessel_type": vessel("T175").pk,
        "cells_per_flask": "300000",
        "medium_volume_ml": "30",
        "density_reason": "",
        "client_token": "matrix-passage",
    }
    calls = {
        "manufacturing:lot-receive": Call(
            {},
            _fixed(
                {
                    "reagent": reagent("MEM-alpha").pk,
                    "supplier": "Acme Bio",
                    "lot_number": "MA-2291",
                    "expiry_date": (timezone.localdate() + dt.timedelta(days=90)).isoformat(),
                }
            ),
        ),
        "manufacturing:lot-release": Call({"code": quarantined.code}, _fixed({"reason": "certificate reviewed"})),
        "manufacturing:lot-recall": Call({"code": recallable.code}, _fixed({"reason": "supplier recall"})),
        "manufacturing:batch-start-scan": Call({}, _fixed({"payload": label_payload(accepted.code)})),
        "manufacturing:batch-start": Call(
            {"aspirate_code": accepted.code}, _fixed({"mnc_total_cells": "60,000,000", "mnc_viability_percent": "92.5"})
        ),
        "manufacturing:batch-seed": Call(
            {"lot_number": to_seed.lot_number},
            _fixed(
                {
                    "flask_count": "2",
                    "vessel_type": vessel("T75").pk,
                    "cells_per_flask": "11 250 000",
                    "medium_volume_ml": "15",
                    "lots": lot_scans,
                }
            ),
        ),
        "manufacturing:batch-harvest": Call(
            {"lot_number": culture.lot_number},
            _fixed({"viable_cells": "12,000,000", "viability_percent": "94", "volume_ml": "20"}),
        ),
        "manufacturing:flask-feed": Call(
            {"code": flask.code}, _fixed({"lots": lot_scans, "volume_ml": "15", "client_token": "matrix-feed"})
        ),
        "manufacturing:flask-observe": Call(
            {"code": flask.code},
            _fixed({"confluence_percent": "60", "morphology_ok": "yes", "client_token": "matrix-observe"}),
        ),
        "manufacturing:flask-passage": Call({"code": flask.code}, _fixed(passage)),
        "manufacturing:flask-discard": Call(
            {"code": flask.code}, _fixed({"reason": "dropped", "client_token": "matrix-discard"})
        ),
        "api:flask-feed": Call(
            {"code": flask.code}, _fixed({"volume_ml": "15.0", "lot_scans": [label_payload(x.code) for x in lots]})
        ),
        "api:flask-observe": Call({"code": flask.code}, _fixed({"confluence_percent": 60, "morphology_ok": True})),
        "api:flask-passage": Call(
            {"code": flask.code},
            _fixed(
                {
                    "detachment_lot_scan": label_payload(trypsin.code),
                    "media_lot_scans": [label_payload(x.code) for x in lots],
                    "total_cells": 4_200_000,
                    "viable_cells": 4_000_000,
                    "children": 2,
                    "vessel_type": "T175",
                    "cells_per_flask": 350_000,
                    "medium_volume_ml": "30.0",
                }
            ),
        ),
        "api:flask-discard": Call({"code": flask.code}, _fixed({"reason": "dropped"})),
        "api:reagentlot-list": Call(
            {},
            _fixed(
                {
                    "reagent": "MEM-alpha",
                    "supplier": "Acme Bio",
                    "lot_number": "MA-2291",
                    "expiry_date": (timezone.localdate() + dt.timedelta(days=90)).isoformat(),
                }
            ),
        ),
        "api:reagentlot-release": Call({"code": quarantined.code}, _fixed({"reason": "certificate reviewed"})),
        "api:reagentlot-recall": Call({"code": recallable.code}, _fixed({"reason": "supplier recall"})),
    }
    return calls, (culture, flask)


# --- Release: specifications, results, deviations, sessions, the QA decision ------------------------------------


def _release(p: People, study: Any, lots: list[Any], culture: Batch) -> dict[str, Call]:
    rows = criteria_from_reference(json.loads(REFERENCE.read_text())["release_spec"])
    draft = specification_create(study=study, acting_user=p.second_qa, criteria=rows, change_summary="v2 draft")

    def harvested() -> Batch:
        aspirate = accepted_aspirate(study, p.second_clinician, p.second_operator, p.password)
        return harvested_batch(started_batch(aspirate, p.second_operator), p.second_operator, lots)

    to_test = harvested()
    testing = batch_start_release_testing(batch=harvested(), acting_user=p.second_operator)
    criterion = testing.specification.criteria.get(attribute="CD73")
    oos = qc_result_record(
        batch=testing,
        criterion=criterion,
        acting_user=p.second_operator,
        entry=ResultEntry(value="94.0", unit="%", analyst="Q. C. Analyst"),
    )
    assert isinstance(oos, QcResult)
    assert oos.investigation is not None
    decidable = batch_start_release_testing(batch=harvested(), acting_user=p.second_operator)
    enter_passing_results(decidable, p.second_operator)
    session = processing_session_open(
        acting_user=p.second_operator,
        room="Cleanroom 1",
        cabinet="BSC-A",
        started_at=timezone.now() - dt.timedelta(hours=1),
        operators="Oscar Operator",
        batches=[culture],
    )
    viability = testing.specification.criteria.get(attribute="Viability")
    calls = {
        "release:spec-draft": Call({"study_code": study.code}, _fixed({"change_summary": "ISCT-based v3"})),
        "release:spec-approve": Call({"pk": draft.pk}, _signed(p.password)),
        "release:start-testing": Call({"lot_number": to_test.lot_number}),
        "release:results": Call({"lot_number": testing.lot_number}, _fixed(_result_row(testing, "Viability", "94"))),
        "release:retest": Call({"pk": oos.pk}, _fixed(_result_row(testing, "CD73", "96.5"))),
        "release:invalidate": Call({"pk": oos.pk}, _signed(p.password, "pipetting error proven")),
        "release:deviation-close": Call(
            {"code": oos.investigation.code},
            lambda user: {
                **_signed(p.password, "investigation complete")(user),
                "classification": "minor",
                "impact_assessment": "no product impact",
                "corrective_action": "gating SOP retraining",
                "meaning": "reviewed",
            },
        ),
        "release:session-new": Call(
            {},
            _fixed(
                {
                    "room": "Cleanroom 1",
                    "cabinet": "BSC-A",
                    "started_at": local(timezone.now()),
                    "operators": "Olivia Operator",
                    "batches": [culture.pk],
                }
            ),
        ),
        "release:em-reading-new": Call(
            {"pk": session.pk}, _fixed({"grade": "B", "kind": "settle", "location": "floor", "value": "0"})
        ),
        "api:batch-qc-result": Call(
            {"lot_number": testing.lot_number},
            _fixed(
                {
                    "criterion": viability.pk,
                    "value": "94",
                    "unit": "%",
                    "method": "7-AAD flow cytometry",
                    "analyst": "Q. C. Analyst",
                }
            ),
        ),
        "api:batch-decision": Call(
            {"lot_number": decidable.lot_number}, _api_signature(p.password, "released", decision="released")
        ),
        "admin:manufacturing_batch_release_decide": Call(
            {"object_id": str(decidable.pk), "decision": "released"}, _signed(p.password, "all criteria met")
        ),
    }
    return calls


# --- The product: formulation, dose, transport, bedside, infusion ----------------------------------------------


def _product(p: People, study: Any) -> dict[str, Call]:
    def released() -> Batch:
        return released_batch(study, p.second_clinician, p.second_operator, p.second_qa, p.second_qa, p.password)

    def sign(user: Any, meaning: str) -> SignatureRequest:
        return SignatureRequest(username=user.username, password=p.password, meaning=meaning, reason="checked")

    to_formulate = released()
    formulated = product_formulate(
        batch=released(), acting_user=p.second_operator, total_viable_cells=44_000_000, volume_ml="10"
    )
    dose = dose_calculate(
        product=formulated,
        acting_user=p.second_clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    issued = product_formulate(
        batch=released(), acting_user=p.second_operator, total_viable_cells=44_000_000, volume_ml="10"
    )
    verified = dose_calculate(
        product=issued,
        acting_user=p.second_clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    dose_verify(dose=verified, acting_user=p.third_clinician, signature=sign(p.third_clinician, "verified"))
    product_issue(product=issued, acting_user=p.second_operator, handover=Handover(courier="Hamid", temperature_c="5"))
    at_ward = product_at_ward(released(), p.second_operator, p.second_clinician, p.third_clinician, p.password)
    infusing = product_at_ward(released(), p.second_operator, p.second_clinician, p.third_clinician, p.password)
    infusion = bedside_verify(
        wristband_payload=label_payload(f"WB-{infusing.batch.subject.code}"),
        bag_payload=label_payload(infusing.code),
        acting_user=p.clinician,
        second_clinician=sign(p.second_clinician, "witnessed"),
    )
    now = timezone.localtime()
    vitals = {
        "heart_rate_bpm": "72",
        "systolic_mmhg": "124",
        "diastolic_mmhg": "78",
        "temperature_c": "36.8",
        "spo2_percent": "98",
        "respiratory_rate": "14",
    }
    infusion_form = {
        "started_at": local(now),
        "ended_at": local(now),
        "volume_infused_ml": "9.1",
        "password": p.password,
        "witness_username": p.second_clinician.username,
        "witness_password": p.password,
        **{f"{name}_{when}": value for name, value in vitals.items() for when in ("before", "after")},
    }
    dose_form = {
        "weight_kg": "40",
        "weight_measured_on": timezone.localdate().isoformat(),
        "target_million_per_kg": "1.0",
    }
    return {
        "product:formulate": Call(
            {"lot_number": to_formulate.lot_number}, _fixed({"total_viable_cells_million": "44", "volume_ml": "10"})
        ),
        "product:dose": Call({"code": formulated.code}, _fixed(dose_form)),
        "product:dose-verify": Call({"pk": dose.pk}, _signed(p.password, "calculation checked")),
        "product:issue": Call({"code": formulated.code}, _fixed({"courier": "Hamid", "temperature_c": "5"})),
        "product:dispose": Call(
            {"code": formulated.code}, _fixed({"disposition": "destroyed", "reason": "bag damaged"})
        ),
        "product:receive": Call(
            {"code": issued.code},
            _fixed({"scanned": label_payload(issued.code), "courier": "Hamid", "temperature_c": "5", "ward": "Ward 3"}),
        ),
        "product:bedside": Call(
            {},
            _fixed(
                {
                    "wristband": label_payload(f"WB-{at_ward.batch.subject.code}"),
                    "bag": label_payload(at_ward.code),
                    "username": p.second_clinician.username,
                    "password": p.password,
                }
            ),
        ),
        "product:infusion": Call({"pk": infusion.pk}, _fixed(infusion_form)),
        "api:product-dose": Call(
            {"code": formulated.code},
            _fixed(
                {
                    "weight_kg": "40.0",
                    "weight_measured_on": timezone.localdate().isoformat(),
                    "target_million_per_kg": "1.000",
                }
            ),
        ),
        "api:dose-verify": Call({"pk": dose.pk}, _api_signature(p.password, "verified")),
    }


# --- Labels, custody, signatures, reminders, tokens ----------------------------------------------------------


def _everyday(p: People, flask: Any, operator_token_id: int) -> dict[str, Call]:
    label = Label.objects.get(code=flask.code)
    handover = custody_record(
        label=label,
        acting_user=p.second_operator,
        handed_over_by="Oscar Operator",
        received_by="Courier",
        location="Cleanroom door",
        occurred_at=timezone.now(),
        temperature_c="21.0",
        container_condition=ContainerCondition.INTACT,
    )
    reminder = Reminder.objects.create(
        kind="feed_due",
        content_type=ContentType.objects.get_for_model(flask),
        object_id=flask.pk,
        item_code=flask.code,
        title=f"Feed flask {flask.code}",
        audience_role=OPERATOR,
        due_at=timezone.now() - dt.timedelta(minutes=5),
    )
    custody_api = _custody_form(flask.code) | {"occurred_at": timezone.now().isoformat()}
    record = {"content_type_id": ContentType.objects.get_for_model(flask).pk, "object_id": flask.pk}
    return {
        # Pages that only show something but have no method restriction: POST reaches them too.
        "home": Call(),
        "label-detail": Call({"code": label.code}),
        "label-pdf": Call({"code": label.code}),
        "label-zpl": Call({"code": label.code}),
        "audit-trail": Call(record),
        "reminder-inbox": Call(),
        "api:docs": Call(),
        "scan": Call({}, _fixed({"payload": label_payload(flask.code)})),
        "custody-new": Call({"code": label.code}, _fixed(_custody_form(flask.code))),
        "record-sign": Call(
            {"content_type_id": ContentType.objects.get_for_model(handover).pk, "object_id": handover.pk},
            _signed(p.password, "I saw the hand-over", meaning="witnessed"),
        ),
        "reminder-acknowledge": Call({"pk": reminder.pk}),
        "reminder-snooze": Call({"pk": reminder.pk}, _fixed({"minutes": "30", "reason": "at the hood"})),
        "reminder-preferences": Call({}, _fixed({"daily_digest": "on"})),
        "logout": Call(),
        "api:scan": Call({}, _fixed({"payload": label_payload(flask.code)})),
        "api:label-custody": Call({"code": label.code}, _fixed(custody_api)),
        "api:token-list": Call({}, _fixed({"name": "tablet", "role": OPERATOR, "password": p.password})),
        "api:token-revoke": Call({"pk": operator_token_id}, _fixed({"reason": "tablet retired"})),
    }


def arrange(p: People, study: Any, *, operator_token_id: int) -> dict[str, Call]:
    """The whole scene; returns the request of every route that takes a state-changing method, by its key."""
    approved_specification(study, p.second_qa, p.password)
    lots = [
        released_lot("MEM-alpha", p.second_operator, p.second_qa),
        released_lot("Human platelet lysate", p.second_operator, p.second_qa),
    ]
    calls = _samples(p, study)
    cleanroom, (culture, flask) = _cleanroom(p, study, lots)
    calls |= cleanroom | _release(p, study, lots, culture) | _product(p, study) | _everyday(p, flask, operator_token_id)
    return calls
