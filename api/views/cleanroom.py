"""Batches, flasks and reagent lots: read them, and record the cleanroom's steps through the services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api import examples as ex
from api import filters
from api.serializers import read, write
from api.views.base import ReadViewSet, validated
from api.views.base import write as call
from lims.errors import DomainError
from lims.models import Deviation
from lims.signatures import SignatureRequest
from manufacturing.forms import lots_from_scans
from manufacturing.models import Batch, CultureEvent, Flask, QcResult, QcSample, ReagentLot, SpecCriterion
from manufacturing.services import culture, release
from manufacturing.services import lots as lot_services

CULTURE = ("manufacturing.add_cultureevent", "record culture steps")


def scanned_lots(payloads: list[str], acting_user: Any) -> list[ReagentLot]:
    """The pages' one way from scans to lots (each scan is recorded); a bad line is refused in words."""
    try:
        return lots_from_scans("\n".join(payloads), acting_user=acting_user)
    except DjangoValidationError as exc:
        raise DomainError(
            "Not every scan is a reagent lot label: " + " ".join(exc.messages), code="bad_scan", reasons=exc.messages
        ) from exc


def signature_of(data: dict[str, Any]) -> SignatureRequest:
    return SignatureRequest(
        username=data["username"], password=data["password"], meaning=data["meaning"], reason=data["reason"]
    )


def step_result(event: CultureEvent) -> dict[str, Any]:
    event = (
        CultureEvent.objects.select_related("flask__batch", "recorded_by")
        .prefetch_related("reagent_uses__lot")
        .get(pk=event.pk)
    )
    flask = event.flask
    deviation = (
        Deviation.objects.filter(
            content_type__model="flask", content_type__app_label="manufacturing", object_id=flask.pk
        )
        .order_by("-opened_at", "-id")
        .values_list("code", flat=True)
        .first()
        if flask.status == "quarantined"
        else None
    )
    children = list(flask.children.order_by("code").values_list("code", flat=True))
    return {
        "event": read.CultureEventSerializer(event).data,
        "flask_status": flask.status,
        "children": children if event.kind == "passage" else [],
        "deviation": deviation,
    }


@extend_schema_view(
    list=extend_schema(tags=["Batches"], examples=ex.read("A page of batches", ex.BATCH)),
    retrieve=extend_schema(tags=["Batches"], examples=ex.read("One batch", ex.BATCH)),
)
class BatchViewSet(ReadViewSet):
    queryset = Batch.objects.select_related("subject__study", "aspirate", "protocol", "specification").order_by(
        "-started_at", "-id"
    )
    serializer_class = read.BatchSerializer
    lookup_field = "lot_number"
    filterset_class = filters.BatchFilter
    ordering_fields = ("started_at", "lot_number", "status")
    what = "batch"
    rules = {
        "list": ("manufacturing.view_batch", "view batches"),
        "retrieve": ("manufacturing.view_batch", "view batches"),
        "qc_result": ("manufacturing.enter_qcresult", "enter QC results"),
        "decision": ("manufacturing.decide_release", "release or reject batches"),
    }

    @extend_schema(
        tags=["Release"],
        summary="Enter one QC result; its flag is computed now and stored",
        request=write.QcResultRequestSerializer,
        responses={201: read.QcResultSerializer},
        examples=ex.step(
            "Viability by flow cytometry",
            {"criterion": 9, "value": "94", "unit": "%", "method": "7-AAD flow cytometry", "analyst": "Q. C. Analyst"},
            ex.QC_RESULT,
        ),
    )
    @action(detail=True, methods=["post"], url_path="qc-results")
    def qc_result(self, request: Request, lot_number: str | None = None) -> HttpResponse:
        batch = self.target()
        data = validated(write.QcResultRequestSerializer, request)
        criterion = SpecCriterion.objects.filter(pk=data["criterion"]).first()
        if criterion is None:
            raise ValidationError({"criterion": [f"No specification criterion {data['criterion']} is recorded."]})
        sample = None
        if data["sample"]:
            sample = QcSample.objects.filter(code=data["sample"], batch=batch).first()
            if sample is None:
                raise ValidationError({"sample": [f"{data['sample']} is not a QC sample of batch {batch.lot_number}."]})
        retest_of = None
        if data["retest_of"] is not None:
            retest_of = QcResult.objects.filter(pk=data["retest_of"], batch=batch).first()
            if retest_of is None:
                raise ValidationError({"retest_of": [f"Result {data['retest_of']} is not a result of this batch."]})
        entry = release.ResultEntry(
            value=data["value"],
            outcome=data["outcome"],
            unit=data["unit"],
            method=data["method"],
            instrument=data["instrument"],
            analyst=data["analyst"],
            tested_at=data["tested_at"],
        )

        def run() -> Response:
            result = release.qc_result_record(
                batch=batch,
                criterion=criterion,
                acting_user=request.user,
                entry=entry,
                sample=sample,
                retest_of=retest_of,
            )
            fresh = QcResult.objects.select_related("batch", "criterion", "entered_by", "sample", "investigation")
            return Response(read.QcResultSerializer(fresh.get(pk=result.pk)).data, status=status.HTTP_201_CREATED)

        return call(request, run)

    @extend_schema(
        tags=["Release"],
        summary="QA's signed decision: release, conditional release or reject",
        description="Re-asks the signer's username and password, exactly like the admin's release review.",
        request=write.ReleaseDecisionRequestSerializer,
        responses={200: read.BatchSerializer},
        examples=ex.step(
            "Release with an e-signature",
            {"decision": "released", "justification": "", "signature": ex.SIG},
            {**ex.BATCH, "status": "released", "decided_at": ex.T},
            status="200",
        ),
    )
    @action(detail=True, methods=["post"])
    def decision(self, request: Request, lot_number: str | None = None) -> HttpResponse:
        batch = self.target()
        data = validated(write.ReleaseDecisionRequestSerializer, request)

        def run() -> Response:
            decided = release.batch_release_decide(
                batch=batch,
                acting_user=request.user,
                decision=data["decision"],
                signature=signature_of(data["signature"]),
                justification=data["justification"],
            )
            return Response(read.BatchSerializer(self.get_queryset().get(pk=decided.pk)).data)

        return call(request, run)


FLASK_STEP: dict[str, Any] = {"event": ex.EVENT, "flask_status": "in_culture", "children": [], "deviation": None}


@extend_schema_view(
    list=extend_schema(tags=["Flasks"], examples=ex.read("A page of flasks", ex.FLASK)),
    retrieve=extend_schema(tags=["Flasks"], examples=ex.read("One flask", ex.FLASK)),
)
class FlaskViewSet(ReadViewSet):
    queryset = Flask.objects.select_related("batch", "parent", "vessel_type").order_by(
        "batch_id", "passage_number", "code"
    )
    serializer_class = read.FlaskSerializer
    lookup_field = "code"
    filterset_class = filters.FlaskFilter
    ordering_fields = ("code", "seeded_at", "passage_number", "status")
    what = "flask"
    rules = {
        "list": ("manufacturing.view_flask", "view flasks"),
        "retrieve": ("manufacturing.view_flask", "view flasks"),
        "feed": CULTURE,
        "observe": CULTURE,
        "passage": CULTURE,
        "discard": CULTURE,
    }

    @extend_schema(
        tags=["Culture"],
        summary="Feed (medium change), with the lots used",
        request=write.FeedRequestSerializer,
        responses={201: read.FlaskStepSerializer},
        examples=ex.step(
            "Fresh medium, two lots scanned", {"volume_ml": "15.0", "lot_scans": ex.LOT_PAYLOADS}, FLASK_STEP
        ),
    )
    @action(detail=True, methods=["post"])
    def feed(self, request: Request, code: str | None = None) -> HttpResponse:
        flask = self.target()
        data = validated(write.FeedRequestSerializer, request)

        def run() -> Response:
            event = culture.flask_feed(
                flask=flask,
                acting_user=request.user,
                volume_ml=data["volume_ml"],
                lots=scanned_lots(data["lot_scans"], request.user),
                occurred_at=data["occurred_at"],
                backdate_reason=data["backdate_reason"],
            )
            return Response(step_result(event), status=status.HTTP_201_CREATED)

        return call(request, run)

    @extend_schema(
        tags=["Culture"],
        summary="Observe: confluence, morphology and signs of contamination (contamination quarantines)",
        request=write.ObserveRequestSerializer,
        responses={201: read.FlaskStepSerializer},
        examples=ex.step(
            "70 % confluent, normal morphology",
            {"confluence_percent": 70, "morphology_ok": True},
            {**FLASK_STEP, "event": {**ex.EVENT, "kind": "observation", "volume_ml": None, "confluence_percent": 70}},
        ),
    )
    @action(detail=True, methods=["post"])
    def observe(self, request: Request, code: str | None = None) -> HttpResponse:
        flask = self.target()
        data = validated(write.ObserveRequestSerializer, request)
        observation = culture.Observation(
            confluence_percent=data["confluence_percent"],
            morphology_ok=data["morphology_ok"],
            note=data["note"],
            turbidity=data["turbidity"],
            colour_change=data["colour_change"],
            microscopy_contamination=data["microscopy_contamination"],
        )

        def run() -> Response:
            event = culture.flask_observe(
                flask=flask,
                acting_user=request.user,
                observation=observation,
                occurred_at=data["occurred_at"],
                backdate_reason=data["backdate_reason"],
            )
            return Response(step_result(event), status=status.HTTP_201_CREATED)

        return call(request, run)

    @extend_schema(
        tags=["Culture"],
        summary="Passage: detach, count and reseed into new flasks at the next passage number",
        request=write.PassageRequestSerializer,
        responses={201: read.FlaskStepSerializer},
        examples=ex.step(
            "Into two T175 flasks",
            {
                "detachment_lot_scan": "S1.RL-00003.H2KXQ7MZB4TPLV9D",
                "media_lot_scans": ex.LOT_PAYLOADS,
                "total_cells": 4200000,
                "viable_cells": 4000000,
                "children": 2,
                "vessel_type": "T175",
                "cells_per_flask": 350000,
                "medium_volume_ml": "30.0",
            },
            {
                **FLASK_STEP,
                "flask_status": "passaged",
                "children": ["FL-000013", "FL-000014"],
                "event": {
                    **ex.EVENT,
                    "kind": "passage",
                    "volume_ml": None,
                    "total_cells": 4200000,
                    "viable_cells": 4000000,
                    "viability_percent": "95.2",
                },
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def passage(self, request: Request, code: str | None = None) -> HttpResponse:
        flask = self.target()
        data = validated(write.PassageRequestSerializer, request)

        def run() -> Response:
            detachment = scanned_lots([data["detachment_lot_scan"]], request.user)
            if len(detachment) != 1:
                raise DomainError("Scan exactly one detachment reagent lot.")
            event = culture.flask_passage(
                flask=flask,
                acting_user=request.user,
                passage=culture.Passage(
                    detachment_lot=detachment[0],
                    total_cells=data["total_cells"],
                    viable_cells=data["viable_cells"],
                    children=data["children"],
                    media_lots=scanned_lots(data["media_lot_scans"], request.user),
                    seeding=culture.Seeding(
                        vessel_type=data["vessel_type"],
                        cells_per_flask=data["cells_per_flask"],
                        medium_volume_ml=data["medium_volume_ml"],
                        density_reason=data["density_reason"],
                    ),
                ),
                occurred_at=data["occurred_at"],
                backdate_reason=data["backdate_reason"],
            )
            return Response(step_result(event), status=status.HTTP_201_CREATED)

        return call(request, run)

    @extend_schema(
        tags=["Culture"],
        summary="Discard a flask (also a quarantined one), with the reason",
        request=write.DiscardRequestSerializer,
        responses={201: read.FlaskStepSerializer},
        examples=ex.step(
            "Contaminated",
            {"reason": "turbid medium, QA decided to discard"},
            {**FLASK_STEP, "flask_status": "discarded", "event": {**ex.EVENT, "kind": "discard", "volume_ml": None}},
        ),
    )
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, code: str | None = None) -> HttpResponse:
        flask = self.target()
        data = validated(write.DiscardRequestSerializer, request)

        def run() -> Response:
            event = culture.flask_discard(flask=flask, acting_user=request.user, reason=data["reason"])
            return Response(step_result(event), status=status.HTTP_201_CREATED)

        return call(request, run)


@extend_schema_view(
    list=extend_schema(tags=["Reagent lots"], examples=ex.read("A page of reagent lots", ex.LOT)),
    retrieve=extend_schema(tags=["Reagent lots"], examples=ex.read("One reagent lot", ex.LOT)),
)
class ReagentLotViewSet(ReadViewSet):
    queryset = ReagentLot.objects.select_related("reagent", "received_by").order_by(
        "reagent__name", "expiry_date", "code"
    )
    serializer_class = read.ReagentLotSerializer
    lookup_field = "code"
    filterset_class = filters.ReagentLotFilter
    ordering_fields = ("code", "expiry_date", "received_at", "status")
    what = "reagent lot"
    rules = {
        "list": ("manufacturing.view_reagentlot", "view reagent lots"),
        "retrieve": ("manufacturing.view_reagentlot", "view reagent lots"),
        "create": ("manufacturing.add_reagentlot", "receive reagent lots"),
        "release": ("manufacturing.release_reagentlot", "release reagent lots"),
        "recall": ("manufacturing.recall_reagentlot", "recall reagent lots"),
    }

    @extend_schema(
        tags=["Reagent lots"],
        summary="Receive a delivered lot into quarantine (it is labelled; QA releases it before use)",
        request=write.LotReceiveRequestSerializer,
        responses={201: read.ReagentLotSerializer},
        examples=ex.step(
            "MEM-alpha delivered",
            {"reagent": "MEM-alpha", "supplier": "Acme Bio", "lot_number": "MA-2291", "expiry_date": "2026-09-30"},
            {**ex.LOT, "status": "quarantine", "status_reason": ""},
        ),
    )
    def create(self, request: Request) -> HttpResponse:
        data = validated(write.LotReceiveRequestSerializer, request)

        def run() -> Response:
            lot = lot_services.reagent_lot_receive(acting_user=request.user, **data)
            return Response(read.ReagentLotSerializer(self.get_queryset().get(pk=lot.pk)).data, status=201)

        return call(request, run)

    @extend_schema(
        tags=["Reagent lots"],
        summary="QA releases a lot from quarantine",
        request=write.ReasonRequestSerializer,
        responses={200: read.ReagentLotSerializer},
        examples=ex.step("Certificate reviewed", {"reason": "certificate of analysis reviewed"}, ex.LOT, status="200"),
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, code: str | None = None) -> HttpResponse:
        lot = self.target()
        data = validated(write.ReasonRequestSerializer, request)

        def run() -> Response:
            released = lot_services.reagent_lot_release(lot=lot, acting_user=request.user, reason=data["reason"])
            return Response(read.ReagentLotSerializer(self.get_queryset().get(pk=released.pk)).data)

        return call(request, run)

    @extend_schema(
        tags=["Reagent lots"],
        summary="Recall a lot: it can no longer be used; every flask and batch that used it is listed",
        request=write.ReasonRequestSerializer,
        responses={200: read.RecallSerializer},
        examples=ex.step(
            "Supplier recall",
            {"reason": "supplier recall notice 2026-14"},
            {"lot": {**ex.LOT, "status": "recalled"}, "flasks": ["FL-000012"], "batches": ["RAMSC-001-B1"]},
            status="200",
        ),
    )
    @action(detail=True, methods=["post"])
    def recall(self, request: Request, code: str | None = None) -> HttpResponse:
        lot = self.target()
        data = validated(write.ReasonRequestSerializer, request)

        def run() -> Response:
            impact = lot_services.reagent_lot_recall(lot=lot, acting_user=request.user, reason=data["reason"])
            return Response(
                {
                    "lot": read.ReagentLotSerializer(self.get_queryset().get(pk=impact.lot.pk)).data,
                    "flasks": [flask.code for flask in impact.flasks],
                    "batches": [batch.lot_number for batch in impact.batches],
                }
            )

        return call(request, run)
