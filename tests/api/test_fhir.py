"""FHIR R5 export: the bag and its infusion validate with fhir.resources and stay pseudonymous."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.procedure import Procedure

from api.fhir import SUBJECT_SYSTEM
from lims.labels import label_payload
from lims.signatures import SignatureRequest
from manufacturing.services.infusion import InfusionRecord, bedside_verify, infusion_complete
from tests.manufacturing.helpers import product_at_ward

VITALS = {
    "heart_rate_bpm": "72",
    "systolic_mmhg": "124",
    "diastolic_mmhg": "78",
    "temperature_c": "36.8",
    "spo2_percent": "98",
    "respiratory_rate": "14",
}


def _signed(user, password, meaning):
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason="checked together")


@pytest.fixture
def infusion(released, operator, clinician, second_clinician, password, time_machine):
    product = product_at_ward(released, operator, clinician, second_clinician, password)
    infusion = bedside_verify(
        wristband_payload=label_payload(f"WB-{product.batch.subject.code}"),
        bag_payload=label_payload(product.code),
        acting_user=clinician,
        second_clinician=_signed(second_clinician, password, "witnessed"),
    )
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=40))
    now = timezone.now()
    return infusion_complete(
        infusion=infusion,
        acting_user=clinician,
        record=InfusionRecord(
            started_at=now - dt.timedelta(minutes=30),
            ended_at=now - dt.timedelta(minutes=5),
            volume_infused_ml="9.1",
            vitals_before=VITALS,
            vitals_after=VITALS,
            adverse_reaction="mild chills",
            adverse_grade=1,
            adverse_action="observed, resolved",
        ),
        administered=_signed(clinician, password, "administered"),
        witnessed=_signed(second_clinician, password, "witnessed"),
    )


@pytest.mark.requirement("CFR1271.290")
def test_the_product_exports_as_a_valid_biologically_derived_product(as_clinician, infusion):
    product = infusion.product
    response = as_clinician.get(f"/api/fhir/BiologicallyDerivedProduct/{product.code}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    resource = BiologicallyDerivedProduct.model_validate(response.json())
    assert resource.id == product.code
    assert resource.productCategory.code == "cells"
    assert (resource.storageTempRequirements.low.value, resource.storageTempRequirements.high.value) == (2, 8)
    assert resource.expirationDate == product.expires_at
    aspirate = product.batch.aspirate
    assert resource.collection.source.identifier.value == product.batch.subject.code
    assert resource.collection.source.identifier.system == SUBJECT_SYSTEM
    assert resource.collection.collectedDateTime == aspirate.collected_at
    assert resource.collection.collector.identifier.value == aspirate.collected_by.username
    assert "autologous" in resource.productCode.text.lower()
    assert resource.property is not None
    uses = [p for p in resource.property if p.type.coding and p.type.coding[0].code == "intended-use"]
    assert uses[0].valueCodeableConcept.text == "FOR AUTOLOGOUS USE ONLY"


@pytest.mark.requirement("CFR1271.290")
def test_the_infusion_exports_as_a_valid_procedure_linking_subject_and_product(as_clinician, infusion):
    response = as_clinician.get(f"/api/fhir/Procedure/{infusion.pk}")
    assert response.status_code == 200
    resource = Procedure.model_validate(response.json())
    assert resource.status == "completed"
    assert resource.subject.identifier.value == infusion.subject.code
    assert resource.used is not None
    assert resource.complication is not None
    assert resource.used[0].reference.reference == f"BiologicallyDerivedProduct/{infusion.product.code}"
    assert resource.occurrencePeriod.start == infusion.started_at
    assert {p.actor.identifier.value for p in resource.performer} == {"clara", "colin"}
    assert "mild chills" in str(resource.complication[0].concept.text)


def test_a_product_before_infusion_exports_too(as_clinician, product):
    response = as_clinician.get(f"/api/fhir/BiologicallyDerivedProduct/{product.code}")
    resource = BiologicallyDerivedProduct.model_validate(response.json())
    assert resource.productStatus.code == "available"


def test_the_export_names_no_person_of_the_study_but_by_code(as_clinician, infusion):
    text = json.dumps(
        [
            as_clinician.get(f"/api/fhir/BiologicallyDerivedProduct/{infusion.product.code}").json(),
            as_clinician.get(f"/api/fhir/Procedure/{infusion.pk}").json(),
        ]
    )
    subject = infusion.subject
    assert subject.date_of_birth.isoformat() not in text
    assert "birthDate" not in text


def test_fhir_refusals_are_operation_outcomes(as_outsider, as_clinician, db):
    missing = as_clinician.get("/api/fhir/BiologicallyDerivedProduct/PB-NOPE")
    assert missing.status_code == 404
    assert OperationOutcome.model_validate(missing.json()).issue[0].code == "not-found"
    forbidden = as_outsider.get("/api/fhir/Procedure/1")
    assert forbidden.status_code == 403
    assert OperationOutcome.model_validate(forbidden.json()).issue[0].code == "forbidden"
