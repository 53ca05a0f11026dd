"""Scanning a label, and recording a custody hand-over of the scanned item."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import examples as ex
from api.serializers import read, write
from api.views.base import CODE_RE, not_found, validated
from api.views.base import write as call
from lims.errors import DomainError
from lims.models import CustodyEvent, Label, LabelKind
from lims.services import custody_record, require_scanned, scan_resolve

# Label kind → (type word, API route name, lookup taken from the label code or the item).
_TYPES: dict[str, tuple[str, str | None]] = {
    LabelKind.WRISTBAND: ("subject", "api:subject-detail"),
    LabelKind.ASPIRATE: ("aspirate", "api:aspirate-detail"),
    LabelKind.FLASK: ("flask", "api:flask-detail"),
    LabelKind.QC_SAMPLE: ("qc_sample", None),
    LabelKind.PRODUCT: ("product", "api:product-detail"),
    LabelKind.BLOOD: ("blood_sample", None),
    LabelKind.REAGENT_LOT: ("reagent_lot", "api:reagentlot-detail"),
}


def item_of(label: Label, scan_id: int) -> dict[str, Any]:
    kind, route = _TYPES.get(label.kind, (label.kind, None))
    item_code = label.subject_code if label.kind == LabelKind.WRISTBAND else label.code
    return {
        "scan_id": scan_id,
        "type": kind,
        "kind": label.kind,
        "code": label.code,
        "subject_code": label.subject_code,
        "url": label.get_absolute_url(),
        "api_url": reverse(route, args=[item_code]) if route else None,
    }


class ScanView(APIView):
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {"post": ("lims.view_label", "scan labels")}

    @extend_schema(
        tags=["Scanning"],
        summary="Resolve a scanned QR payload to its item; every attempt, good or bad, is recorded",
        request=write.ScanRequestSerializer,
        responses={200: read.ScanResultSerializer},
        examples=ex.step(
            "A flask label",
            {"payload": "S1.FL-000012.ABCDEFGHJKMNPQRS"},
            {
                "scan_id": 311,
                "type": "flask",
                "kind": "FL",
                "code": "FL-000012",
                "subject_code": "RAMSC-001",
                "url": "/manufacturing/flasks/FL-000012/",
                "api_url": "/api/flasks/FL-000012/",
            },
            status="200",
        ),
    )
    def post(self, request: Request) -> HttpResponse:
        data = validated(write.ScanRequestSerializer, request)

        def run() -> Response:
            result = scan_resolve(payload=data["payload"], acting_user=request.user)
            if result.label is None:
                raise DomainError(result.error, code=f"scan_{result.attempt.outcome}")
            return Response(item_of(result.label, result.attempt.pk))

        return call(request, run)


class CustodyView(APIView):
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {
        "post": ("lims.add_custodyevent", "record a custody hand-over")
    }

    @extend_schema(
        tags=["Scanning"],
        summary="Record a custody hand-over of the labelled item (scan it first, as on the page)",
        request=write.CustodyRequestSerializer,
        responses={201: read.CustodyEventSerializer},
        examples=ex.step(
            "Flask to the incubator room",
            {
                "scanned_payload": "S1.FL-000012.ABCDEFGHJKMNPQRS",
                "handed_over_by": "Olivia Operator",
                "received_by": "Oscar Operator",
                "location": "Incubator 2",
                "occurred_at": ex.T,
                "temperature_c": "37.0",
                "container_condition": "intact",
            },
            ex.CUSTODY,
        ),
    )
    def post(self, request: Request, code: str) -> HttpResponse:
        label = Label.objects.filter(code=code).first() if CODE_RE.fullmatch(code) else None
        if label is None:
            raise not_found("label", code)
        data = validated(write.CustodyRequestSerializer, request)
        payload = data.pop("scanned_payload")

        def run() -> Response:
            require_scanned(payload=payload, expected_code=label.code, acting_user=request.user)
            event = custody_record(label=label, acting_user=request.user, **data)
            fresh = CustodyEvent.objects.select_related("label", "recorded_by").get(pk=event.pk)
            return Response(read.CustodyEventSerializer(fresh).data, status=status.HTTP_201_CREATED)

        return call(request, run)
