"""Aspirates, products and doses: read them, receive an aspirate, calculate and verify a dose."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api import examples as ex
from api import filters
from api.serializers import read, write
from api.views.base import ReadViewSet, validated
from api.views.base import write as call
from api.views.cleanroom import signature_of
from manufacturing.models import DoseCalculation, FinalProduct
from manufacturing.services import infusion
from samples import services as sample_services
from samples.models import Aspirate


@extend_schema_view(
    list=extend_schema(tags=["Aspirates"], examples=ex.read("A page of aspirates", ex.ASPIRATE)),
    retrieve=extend_schema(tags=["Aspirates"], examples=ex.read("One aspirate", ex.ASPIRATE)),
)
class AspirateViewSet(ReadViewSet):
    queryset = Aspirate.objects.select_related("subject__study").order_by("-collected_at", "-id")
    serializer_class = read.AspirateSerializer
    lookup_field = "code"
    filterset_class = filters.AspirateFilter
    ordering_fields = ("collected_at", "received_at", "code", "status")
    what = "aspirate"
    rules = {
        "list": ("samples.view_aspirate", "view aspirates"),
        "retrieve": ("samples.view_aspirate", "view aspirates"),
        "receive": ("samples.receive_aspirate", "receive aspirates"),
    }

    @extend_schema(
        tags=["Aspirates"],
        summary="Receive the tube in the cleanroom by scanning it (outside the limits: decide and give a reason)",
        request=write.AspirateReceiveRequestSerializer,
        responses={200: read.AspirateSerializer},
        examples=ex.step(
            "Within the transport limits",
            {
                "scanned_payload": "S1.AS-RAMSC-001-1.K3M9QZ2TB7XPLW4H",
                "received_at": "2026-03-01T10:05:00+03:30",
                "temperature_c": "21.0",
                "container_intact": True,
                "courier": "Hamid",
                "decision": "accept",
            },
            ex.ASPIRATE,
            status="200",
        ),
    )
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, code: str | None = None) -> HttpResponse:
        aspirate = self.target()
        data = validated(write.AspirateReceiveRequestSerializer, request)

        def run() -> Response:
            received = sample_services.aspirate_receive(aspirate=aspirate, acting_user=request.user, **data)
            return Response(read.AspirateSerializer(self.get_queryset().get(pk=received.pk)).data)

        return call(request, run)


@extend_schema_view(
    list=extend_schema(tags=["Products"], examples=ex.read("A page of products", ex.PRODUCT)),
    retrieve=extend_schema(tags=["Products"], examples=ex.read("One product", ex.PRODUCT)),
)
class ProductViewSet(ReadViewSet):
    queryset = FinalProduct.objects.select_related("batch__subject__study").order_by("-formulated_at", "-id")
    serializer_class = read.ProductSerializer
    lookup_field = "code"
    filterset_class = filters.ProductFilter
    ordering_fields = ("formulated_at", "expires_at", "code", "status")
    what = "product"
    rules = {
        "list": ("manufacturing.view_finalproduct", "view products"),
        "retrieve": ("manufacturing.view_finalproduct", "view products"),
        "dose": ("manufacturing.add_dosecalculation", "calculate doses"),
    }

    @extend_schema(
        tags=["Dose"],
        summary="Calculate the dose for the product's own subject (any earlier calculation is voided)",
        request=write.DoseRequestSerializer,
        responses={201: read.DoseSerializer},
        examples=ex.step(
            "1.0 × 10⁶ cells/kg for 40 kg",
            {"weight_kg": "40.0", "weight_measured_on": "2026-03-01", "target_million_per_kg": "1.000"},
            ex.DOSE,
        ),
    )
    @action(detail=True, methods=["post"], url_path="doses")
    def dose(self, request: Request, code: str | None = None) -> HttpResponse:
        product = self.target()
        data = validated(write.DoseRequestSerializer, request)

        def run() -> Response:
            dose = infusion.dose_calculate(product=product, acting_user=request.user, **data)
            return Response(
                read.DoseSerializer(DoseViewSet.queryset.get(pk=dose.pk)).data, status=status.HTTP_201_CREATED
            )

        return call(request, run)


@extend_schema_view(
    list=extend_schema(tags=["Dose"], examples=ex.read("A page of dose calculations", ex.DOSE)),
    retrieve=extend_schema(tags=["Dose"], examples=ex.read("One dose calculation", ex.DOSE)),
)
class DoseViewSet(ReadViewSet):
    queryset = DoseCalculation.objects.select_related("product", "subject", "calculated_by", "verified_by").order_by(
        "-calculated_at", "-id"
    )
    serializer_class = read.DoseSerializer
    filterset_class = filters.DoseFilter
    ordering_fields = ("calculated_at", "id", "status")
    what = "dose calculation"
    rules = {
        "list": ("manufacturing.view_dosecalculation", "view dose calculations"),
        "retrieve": ("manufacturing.view_dosecalculation", "view dose calculations"),
        "verify": ("manufacturing.verify_dose", "verify doses"),
    }

    @extend_schema(
        tags=["Dose"],
        summary="A second qualified person verifies the calculation with an e-signature",
        description="Re-asks the signer's username and password, exactly like the page.",
        request=write.DoseVerifyRequestSerializer,
        responses={200: read.DoseSerializer},
        examples=ex.step(
            "Verified by a second clinician",
            {"signature": {**ex.SIG, "username": "colin", "meaning": "verified", "reason": "calculation checked"}},
            {**ex.DOSE, "status": "verified", "verified_by": "colin", "verified_at": ex.T},
            status="200",
        ),
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> HttpResponse:
        dose = self.target()
        data = validated(write.DoseVerifyRequestSerializer, request)

        def run() -> Response:
            verified = infusion.dose_verify(
                dose=dose, acting_user=request.user, signature=signature_of(data["signature"])
            )
            return Response(read.DoseSerializer(self.get_queryset().get(pk=verified.pk)).data)

        return call(request, run)
