"""One arranged cleanroom for the bad-input corpus: every record a refused request can aim at, made once.

Everything is made through the services, as the people would make it, so each page and API call of the
corpus meets a record in the state it needs: a subject still in screening and one enrolled, aspirates
collected, in transit and accepted, batches isolated, in culture (with a discarded and a quarantined
flask), in release testing and released, products formulated, issued and at the ward, reagent lots in
every state, a draft specification, an open and a closed deviation, and API tokens per persona.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from api.tokens import api_token_issue, api_token_revoke
from lims.labels import label_payload
from lims.models import CustodyEvent, Deviation
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from lims.signatures import SignatureRequest
from manufacturing.models import Flask, QcResult, ReagentLot
from manufacturing.services.culture import Observation, Seeding, batch_seed, batch_start, flask_discard, flask_observe
from manufacturing.services.infusion import (
    Handover,
    bedside_verify,
    dose_calculate,
    product_formulate,
    product_issue,
)
from manufacturing.services.lots import reagent_lot_recall, reagent_lot_receive
from manufacturing.services.release import (
    ResultEntry,
    batch_release_decide,
    batch_start_release_testing,
    criteria_from_reference,
    deviation_close,
    processing_session_open,
    qc_result_record,
    specification_create,
)
from samples.models import Aspirate
from samples.services import (
    aspirate_collect,
    aspirate_dispatch,
    aspirate_receive,
    assay_result_record,
    disease_activity_record,
    follow_up_sample_collect,
    subject_answer_eligibility,
    subject_register,
)
from tests.api.helpers import token_for
from tests.factories import DEMO_PASSWORD, UserFactory, approved_study, subject_dates
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

PASSWORD = DEMO_PASSWORD


@dataclass
class World:
    """The arranged records, by the name a case uses for them."""

    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["ids"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _sign(user: Any, meaning: str, reason: str = "checked for the corpus") -> SignatureRequest:
    return SignatureRequest(username=user.username, password=PASSWORD, meaning=meaning, reason=reason)


def _people() -> dict[str, Any]:
    return {
        "operator": UserFactory(username="olivia", first_name="Olivia", last_name="Operator", role=OPERATOR),
        "second_operator": UserFactory(username="oscar", first_name="Oscar", last_name="Operator", role=OPERATOR),
        "qa_officer": UserFactory(username="quinn", first_name="Quinn", last_name="Assurance", role=QA, is_staff=True),
        "second_qa": UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA, is_staff=True),
        "clinician": UserFactory(username="clara", first_name="Clara", last_name="Clinician", role=CLINICIAN),
        "second_clinician": UserFactory(username="colin", first_name="Colin", last_name="Clinician", role=CLINICIAN),
        "lab_manager": UserFactory(username="maria", first_name="Maria", last_name="Manager", role=LAB_MANAGER),
        "outsider": UserFactory(username="otto", first_name="Otto", last_name="Outsider"),
    }


def _old_accepted_aspirate(study: Any, clinician: Any, operator: Any, *, days_ago: int) -> Aspirate:
    """An aspirate collected and received days ago, so that its batch can be recorded as started back then."""
    subject = enrolled_subject(study, clinician, PASSWORD)
    collected = timezone.now() - dt.timedelta(days=days_ago)
    aspirate = aspirate_collect(subject=subject, acting_user=clinician, collected_at=collected, volume_ml="15.0")
    aspirate = aspirate_dispatch(
        aspirate=aspirate,
        acting_user=clinician,
        courier="Hamid",
        temperature_c="21.0",
        dispatched_at=collected + dt.timedelta(minutes=10),
    )
    return aspirate_receive(
        aspirate=aspirate,
        acting_user=operator,
        scanned_payload=label_payload(aspirate.code),
        received_at=collected + dt.timedelta(hours=2),
        temperature_c="21",
        container_intact=True,
        courier="Hamid",
    )


def _lots(w: World, operator: Any, qa: Any) -> None:
    today = timezone.localdate()
    media = [released_lot("MEM-alpha", operator, qa), released_lot("Human platelet lysate", operator, qa)]
    trypsin = released_lot("TrypLE Select", operator, qa)
    quarantined = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="MEM-QUARANTINE",
        expiry_date=today + dt.timedelta(days=90),
    )
    expired = released_lot("MEM-alpha", operator, qa, lot_number="MEM-EXPIRED")
    ReagentLot.objects.filter(pk=expired.pk).update(expiry_date=today - dt.timedelta(days=1))
    expired_in_quarantine = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="MEM-OLD",
        expiry_date=today + dt.timedelta(days=1),
    )
    ReagentLot.objects.filter(pk=expired_in_quarantine.pk).update(expiry_date=today - dt.timedelta(days=3))
    recalled = released_lot("MEM-alpha", operator, qa, lot_number="MEM-RECALLED")
    reagent_lot_recall(lot=recalled, acting_user=qa, reason="supplier recall notice")
    w.ids.update(
        media1=media[0],
        media2=media[1],
        trypsin=trypsin,
        quarantined_lot=quarantined,
        expired_lot=expired,
        old_quarantined_lot=expired_in_quarantine,
        recalled_lot=recalled,
        mem_reagent=reagent("MEM-alpha").pk,
        t75=vessel("T75").pk,
        t175=vessel("T175").pk,
    )


def _clinic(w: World, study: Any, clinician: Any) -> None:
    screening = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    young = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates(age_years=34))
    subject_answer_eligibility(
        subject=young,
        acting_user=clinician,
        answers={c.pk: c.kind == "inclusion" for c in young.protocol.criteria.all()},
    )
    enrolled = enrolled_subject(study, clinician, PASSWORD)
    collected = aspirate_collect(
        subject=enrolled,
        acting_user=clinician,
        collected_at=timezone.now() - dt.timedelta(hours=3),
        volume_ml="15.0",
    )
    in_transit = aspirate_in_transit(enrolled, clinician, hours_ago=3)
    visits = {v.name: v for v in enrolled.protocol.visits.all()}
    analytes = {a.name: a for a in enrolled.protocol.analytes.all()}
    baseline = follow_up_sample_collect(
        subject=enrolled,
        visit=visits["Baseline"],
        acting_user=clinician,
        collected_at=timezone.now() - dt.timedelta(hours=2),
    )
    month_one = follow_up_sample_collect(
        subject=enrolled,
        visit=visits["Month 1"],
        acting_user=clinician,
        collected_at=timezone.now() - dt.timedelta(hours=1),
    )
    assay_result_record(sample=baseline, analyte=analytes["Treg"], value="4.2", acting_user=clinician)
    disease_activity_record(
        subject=enrolled,
        visit=visits["Baseline"],
        acting_user=clinician,
        assessed_on=timezone.localdate(),
        tender=4,
        swollen=2,
        esr_mm_h="20",
        patient_vas_mm=40,
    )
    w.ids.update(
        screening=screening,
        young=young,
        enrolled=enrolled,
        collected_aspirate=collected,
        in_transit=in_transit,
        baseline_sample=baseline,
        month_one_sample=month_one,
        visits={name: v.pk for name, v in visits.items()},
        analytes={name: a.pk for name, a in analytes.items()},
        criteria=[c.pk for c in screening.protocol.criteria.order_by("position")],
        dispatch_custody=CustodyEvent.objects.filter(label__code=in_transit.code).get(),
        custody_type=ContentType.objects.get_for_model(CustodyEvent).pk,
    )


def _culture(w: World, study: Any, clinician: Any, operator: Any) -> None:
    old = _old_accepted_aspirate(study, clinician, operator, days_ago=6)
    received = old.received_at
    assert received is not None
    culture = batch_start(
        aspirate=old,
        acting_user=operator,
        mnc_total_cells=200_000_000,
        mnc_viability_percent="92",
        started_at=received + dt.timedelta(hours=1),
        backdate_reason="recorded after the run",
    )
    flask, discarded = batch_seed(
        batch=culture,
        acting_user=operator,
        flask_count=2,
        seeding=Seeding(vessel_type=vessel("T75"), cells_per_flask=11_250_000, medium_volume_ml="15"),
        lots=[w.media1, w.media2],
        occurred_at=received + dt.timedelta(hours=2),
        backdate_reason="recorded after the run",
    )
    flask_discard(flask=discarded, acting_user=operator, reason="dropped in the hood")
    quarantine_batch = started_batch(accepted_aspirate(study, clinician, operator, PASSWORD), operator)
    quarantined = seeded_flasks(quarantine_batch, operator, [w.media1, w.media2], count=1)[0]
    flask_observe(
        flask=quarantined,
        acting_user=operator,
        observation=Observation(confluence_percent=40, morphology_ok=True, turbidity=True, note="turbid"),
    )
    w.ids.update(
        culture=culture,
        flask=flask,
        discarded=discarded,
        quarantine_batch=quarantine_batch,
        quarantined_flask=quarantined,
        isolated=started_batch(accepted_aspirate(study, clinician, operator, PASSWORD), operator),
        accepted_aspirate=accepted_aspirate(study, clinician, operator, PASSWORD),
        session=processing_session_open(
            acting_user=operator,
            room="Cleanroom 1",
            cabinet="BSC-1",
            started_at=timezone.now(),
            operators="Olivia Operator",
            batches=[culture],
        ).pk,
    )


def _release(w: World, study: Any, clinician: Any, operator: Any, qa: Any, second_qa: Any) -> None:
    approved_specification(study, qa, PASSWORD)
    testing = batch_start_release_testing(
        batch=harvested_batch(
            started_batch(accepted_aspirate(study, clinician, operator, PASSWORD), operator),
            operator,
            [w.media1, w.media2],
        ),
        acting_user=operator,
    )
    oos_batch = batch_start_release_testing(
        batch=harvested_batch(
            started_batch(accepted_aspirate(study, clinician, operator, PASSWORD), operator),
            operator,
            [w.media1, w.media2],
        ),
        acting_user=operator,
    )
    enter_passing_results(oos_batch, operator, skip=("CD73",))
    oos = qc_result_record(
        batch=oos_batch,
        criterion=oos_batch.specification.criteria.get(attribute="CD73"),
        acting_user=operator,
        entry=ResultEntry(value="90", unit="%", analyst="Q. C. Analyst", method="flow cytometry"),
    )
    contamination = Deviation.objects.get(
        content_type=ContentType.objects.get_for_model(Flask), object_id=w.quarantined_flask.pk
    )
    deviation_close(
        deviation=contamination,
        acting_user=second_qa,
        signature=_sign(second_qa, "reviewed"),
        classification="minor",
        impact_assessment="flask kept apart; no other flask affected",
        corrective_action="hood cleaned",
    )
    draft = specification_create(
        study=study,
        acting_user=qa,
        criteria=criteria_from_reference(json.loads(REFERENCE.read_text())["release_spec"]),
        change_summary="v2, awaiting approval",
    )
    w.ids.update(
        testing=testing,
        criterion={c.attribute: c.pk for c in testing.specification.criteria.all()},
        oos_batch=oos_batch,
        oos_result=oos.pk,
        passing_result=QcResult.objects.get(batch=oos_batch, criterion__attribute="CD90").pk,
        oos_deviation=oos.investigation.code,
        closed_deviation=contamination.code,
        draft_spec=draft.pk,
    )


def _released_with_endotoxin(w: World, study: Any, people: dict[str, Any], endotoxin: str) -> Any:
    """A released batch whose endotoxin, judged only at dose time, is too high for a 40 kg patient's dose."""
    operator = people["operator"]
    batch = batch_start_release_testing(
        batch=harvested_batch(
            started_batch(accepted_aspirate(study, people["clinician"], operator, PASSWORD), operator),
            operator,
            [w.media1, w.media2],
        ),
        acting_user=operator,
    )
    enter_passing_results(batch, operator, skip=("Endotoxin",))
    qc_result_record(
        batch=batch,
        criterion=batch.specification.criteria.get(attribute="Endotoxin"),
        acting_user=operator,
        entry=ResultEntry(value=endotoxin, unit="EU/mL", analyst="Q. C. Analyst", method="LAL"),
    )
    return batch_release_decide(
        batch=batch,
        acting_user=people["second_qa"],
        decision="released",
        signature=_sign(people["second_qa"], "released"),
    )


def _products(w: World, study: Any, people: dict[str, Any]) -> None:
    operator, clinician, second = people["operator"], people["clinician"], people["second_clinician"]
    made = [
        released_batch(study, clinician, operator, people["qa_officer"], people["second_qa"], PASSWORD)
        for _ in range(4)
    ]
    at_ward = product_at_ward(made[0], operator, clinician, second, PASSWORD)
    infusion = bedside_verify(
        wristband_payload=label_payload(f"WB-{made[0].subject.code}"),
        bag_payload=label_payload(at_ward.code),
        acting_user=clinician,
        second_clinician=SignatureRequest(
            username=second.username, password=PASSWORD, meaning="witnessed", reason="two-person bedside check"
        ),
    )
    formulated = product_formulate(batch=made[2], acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
    dose = dose_calculate(
        product=formulated,
        acting_user=clinician,
        weight_kg="40",
        weight_measured_on=timezone.localdate(),
        target_million_per_kg="1.0",
    )
    issued = product_formulate(batch=made[3], acting_user=operator, total_viable_cells=44_000_000, volume_ml="10")
    product_issue(product=issued, acting_user=operator, handover=Handover(courier="Hamid", temperature_c="5"))
    w.ids["endotoxin_product"] = product_formulate(
        batch=_released_with_endotoxin(w, study, people, "50"),
        acting_user=operator,
        total_viable_cells=44_000_000,
        volume_ml="10",
    )
    w.ids.update(
        released_batch=made[0],
        at_ward=at_ward,
        infusion=infusion.pk,
        unformulated=made[1],
        formulated=formulated,
        dose=dose.pk,
        issued=issued,
    )


def _tokens(w: World, people: dict[str, Any]) -> None:
    for persona, role in (
        ("operator", OPERATOR),
        ("qa_officer", QA),
        ("second_qa", QA),
        ("clinician", CLINICIAN),
        ("second_clinician", CLINICIAN),
        ("outsider", OPERATOR),
    ):
        w.tokens[persona] = token_for(people[persona], role)
    lost = api_token_issue(owner=people["operator"], role=OPERATOR, name="lost tablet", acting_user=people["operator"])
    api_token_revoke(token=lost.token, acting_user=people["operator"], reason="tablet lost")
    w.tokens["revoked"] = lost.raw
    others = api_token_issue(
        owner=people["clinician"], role=CLINICIAN, name="ward tablet", acting_user=people["clinician"]
    )
    w.ids.update(revoked_token=lost.token.pk, clinicians_token=others.token.pk)


def arrange_world() -> World:
    """Build every record the corpus aims at; about a second on SQLite."""
    w = World()
    people = _people()
    w.users.update(people)
    study = approved_study(people["lab_manager"], PASSWORD)
    w.ids["study"] = study
    _lots(w, people["operator"], people["qa_officer"])
    _clinic(w, study, people["clinician"])
    _culture(w, study, people["clinician"], people["operator"])
    _release(w, study, people["clinician"], people["operator"], people["qa_officer"], people["second_qa"])
    _products(w, study, people)
    _tokens(w, people)
    return w
