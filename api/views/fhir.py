"""GET /api/fhir/BiologicallyDerivedProduct/<code> and /api/fhir/Procedure/<infusion id> (FHIR R5 JSON)."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import fhir
from api.schema import StromaAutoSchema
from api.views.base import CODE_RE, not_found, valid_lookup
from manufacturing.models import FinalProduct, Infusion

_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 406: "not-supported"}


class FhirJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class FhirResourceSerializer(serializers.Serializer):
    resourceType = serializers.CharField()
    id = serializers.CharField()


class OperationOutcomeSerializer(serializers.Serializer):
    resourceType = serializers.CharField()
    issue = serializers.ListField(child=serializers.DictField())


class FhirSchema(StromaAutoSchema):
    error_media_types = ("application/fhir+json", "application/json")

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: Any = "response"
    ) -> Any:
        if status_code != "200":
            serializer = OperationOutcomeSerializer
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

    def get_examples(self) -> list[OpenApiExample]:
        examples = [e for e in super().get_examples() if "200" in (e.status_codes or ["200"])]
        for code in ("401", "403", "404"):
            examples.append(
                OpenApiExample(
                    f"OperationOutcome ({code})",
                    value={
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": _ISSUE_CODES[int(code)], "diagnostics": "…"}],
                    },
                    response_only=True,
                    status_codes=[code],
                    media_type="application/fhir+json",
                )
            )
        return examples


class FhirView(APIView):
    renderer_classes = (FhirJSONRenderer, JSONRenderer)
    schema = FhirSchema()
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {}

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
        response.data = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": _ISSUE_CODES.get(response.status_code, "processing"),
                    "diagnostics": str(detail),
                }
            ],
        }
        return response


class ProductFhirView(FhirView):
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {"get": ("manufacturing.view_finalproduct", "view products")}

    @extend_schema(
        tags=["FHIR"],
        summary="The product bag as a FHIR R5 BiologicallyDerivedProduct",
        parameters=[OpenApiParameter("code", OpenApiTypes.STR, OpenApiParameter.PATH, description="Product code.")],
        responses={200: FhirResourceSerializer},
        examples=[
            OpenApiExample(
                "An autologous MSC bag",
                value={
                    "resourceType": "BiologicallyDerivedProduct",
                    "id": "PB-RAMSC-001-B1",
                    "productCategory": {"system": "http://hl7.org/fhir/product-category", "code": "cells"},
                    "collection": {
                        "source": {
                            "type": "Patient",
                            "identifier": {"system": fhir.SUBJECT_SYSTEM, "value": "RAMSC-001"},
                        },
                        "collectedDateTime": "2026-03-01T04:40:00+00:00",
                    },
                    "storageTempRequirements": {
                        "low": {"value": 2, "unit": "°C", "system": fhir.UCUM, "code": "Cel"},
                        "high": {"value": 8, "unit": "°C", "system": fhir.UCUM, "code": "Cel"},
                    },
                    "expirationDate": "2026-03-02T13:12:00+00:00",
                },
                response_only=True,
                status_codes=["200"],
                media_type="application/fhir+json",
            )
        ],
    )
    def get(self, request: Request, code: str) -> Response:
        product = None
        if CODE_RE.fullmatch(code):
            product = (
                FinalProduct.objects.select_related("batch__subject", "batch__aspirate__collected_by", "batch__harvest")
                .filter(code=code)
                .first()
            )
        if product is None:
            raise not_found("product", code)
        return Response(fhir.biologically_derived_product(product))


class ProcedureFhirView(FhirView):
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {"get": ("manufacturing.view_infusion", "view infusions")}

    @extend_schema(
        tags=["FHIR"],
        summary="An infusion as a FHIR R5 Procedure, linking the pseudonymous subject and the product",
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Infusion id.")],
        responses={200: FhirResourceSerializer},
        examples=[
            OpenApiExample(
                "A completed infusion",
                value={
                    "resourceType": "Procedure",
                    "id": "1",
                    "status": "completed",
                    "subject": {"type": "Patient", "identifier": {"system": fhir.SUBJECT_SYSTEM, "value": "RAMSC-001"}},
                    "used": [{"reference": {"reference": "BiologicallyDerivedProduct/PB-RAMSC-001-B1"}}],
                },
                response_only=True,
                status_codes=["200"],
                media_type="application/fhir+json",
            )
        ],
    )
    def get(self, request: Request, pk: str) -> Response:
        infusion = None
        if valid_lookup(pk, numeric=True):
            infusion = (
                Infusion.objects.select_related(
                    "subject", "product", "dose", "bedside_check", "administered_by", "witnessed_by"
                )
                .filter(pk=int(pk))
                .first()
            )
        if infusion is None:
            raise not_found("infusion", pk)
        return Response(fhir.procedure(infusion))
