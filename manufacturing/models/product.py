"""The final product, the dose for one subject, and its administration at the bedside."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from lims.models import Audited

__all__ = [
    "PRODUCT_TRANSITIONS",
    "BedsideCheck",
    "DoseCalculation",
    "DoseStatus",
    "FinalProduct",
    "Infusion",
    "InfusionStatus",
    "ProductStatus",
]

Q = models.Q
F = models.F


class ProductStatus(models.TextChoices):
    FORMULATED = "formulated", "Formulated (in the cleanroom)"
    ISSUED = "issued", "Issued for transport"
    AT_WARD = "at_ward", "Received at the ward"
    INFUSED = "infused", "Infused"
    RETURNED = "returned", "Returned"
    DESTROYED = "destroyed", "Destroyed"


PRODUCT_TRANSITIONS: dict[str, set[str]] = {
    ProductStatus.FORMULATED: {ProductStatus.ISSUED, ProductStatus.DESTROYED},
    ProductStatus.ISSUED: {ProductStatus.AT_WARD, ProductStatus.RETURNED, ProductStatus.DESTROYED},
    ProductStatus.AT_WARD: {ProductStatus.INFUSED, ProductStatus.RETURNED, ProductStatus.DESTROYED},
    ProductStatus.RETURNED: {ProductStatus.ISSUED, ProductStatus.DESTROYED},
    ProductStatus.INFUSED: set(),
    ProductStatus.DESTROYED: set(),
}


class FinalProduct(Audited):
    """The labelled bag formulated from the harvest: one subject's autologous dose."""

    batch = models.OneToOneField("manufacturing.Batch", on_delete=models.PROTECT, related_name="product")
    code = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=16, choices=ProductStatus.choices, default=ProductStatus.FORMULATED)
    status_reason = models.TextField(blank=True)
    formulated_at = models.DateTimeField()
    formulated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    total_viable_cells = models.PositiveBigIntegerField()
    volume_ml = models.DecimalField("volume (mL)", max_digits=6, decimal_places=1)
    expires_at = models.DateTimeField()
    storage = models.CharField(max_length=40, default="2–8 °C")
    transport_flags = models.TextField(blank=True, help_text="Transport time or temperature outside the limits.")

    class Meta:
        permissions: ClassVar = [
            ("issue_product", "Can issue a product from the cleanroom"),
            ("receive_product", "Can receive a product at the ward"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(total_viable_cells__gt=0) & Q(volume_ml__gt=0), name="product_cells_and_volume_positive"
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=F("formulated_at")), name="product_expires_after"),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("product:detail", args=[self.code])

    @property
    def statement(self) -> str:
        return "FOR AUTOLOGOUS USE ONLY"

    @property
    def viable_concentration_per_ml(self) -> object:
        return self.total_viable_cells / self.volume_ml


class DoseStatus(models.TextChoices):
    CALCULATED = "calculated", "Calculated (awaiting second check)"
    VERIFIED = "verified", "Verified by a second person"
    VOIDED = "voided", "Voided"


class DoseCalculation(Audited):
    """One calculation of the dose; inputs never change: a change is a new calculation and voids this one."""

    product = models.ForeignKey(FinalProduct, on_delete=models.PROTECT, related_name="doses")
    subject = models.ForeignKey("samples.Subject", on_delete=models.PROTECT, related_name="doses")
    status = models.CharField(max_length=16, choices=DoseStatus.choices, default=DoseStatus.CALCULATED)
    status_reason = models.TextField(blank=True)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    weight_measured_on = models.DateField()
    target_million_per_kg = models.DecimalField(max_digits=6, decimal_places=3)
    concentration_per_ml = models.DecimalField(max_digits=16, decimal_places=2)
    cells_to_give = models.DecimalField(max_digits=16, decimal_places=0)
    volume_ml = models.DecimalField(max_digits=6, decimal_places=2)
    achieved_cells = models.DecimalField(max_digits=16, decimal_places=0)
    achieved_million_per_kg = models.DecimalField(max_digits=6, decimal_places=3)
    endotoxin_limit_eu_per_ml = models.DecimalField(max_digits=9, decimal_places=3)
    endotoxin_measured_eu_per_ml = models.DecimalField(max_digits=9, decimal_places=4)
    calculated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    calculated_at = models.DateTimeField(default=timezone.now)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-calculated_at"]
        permissions: ClassVar = [("verify_dose", "Can verify a dose calculation as the second person")]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product"], condition=~Q(status="voided"), name="one_live_dose_per_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.code}: {self.volume_ml} mL for {self.subject.code}"

    def signature_content(self) -> dict[str, object]:
        return {
            f: getattr(self, f)
            for f in (
                "product_id",
                "subject_id",
                "weight_kg",
                "weight_measured_on",
                "target_million_per_kg",
                "concentration_per_ml",
                "cells_to_give",
                "volume_ml",
                "achieved_cells",
                "achieved_million_per_kg",
                "endotoxin_limit_eu_per_ml",
                "endotoxin_measured_eu_per_ml",
            )
        }


class BedsideCheck(Audited):
    """Every bedside verification attempt, including each hard stop, for QA to review."""

    wristband_payload = models.CharField(max_length=255)
    bag_payload = models.CharField(max_length=255)
    product = models.ForeignKey(FinalProduct, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey("samples.Subject", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    first_checker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    second_checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    passed = models.BooleanField()
    findings = models.TextField(blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-checked_at"]
        indexes: ClassVar = [models.Index(fields=["passed", "checked_at"])]

    def __str__(self) -> str:
        return f"Bedside check {'passed' if self.passed else 'HARD STOP'} at {self.checked_at:%Y-%m-%d %H:%M}"


class InfusionStatus(models.TextChoices):
    VERIFIED = "verified", "Verified at the bedside"
    COMPLETED = "completed", "Completed"


class Infusion(Audited):
    """The administration of one product to its subject, witnessed by a second clinician."""

    product = models.OneToOneField(FinalProduct, on_delete=models.PROTECT, related_name="infusion")
    subject = models.ForeignKey("samples.Subject", on_delete=models.PROTECT, related_name="infusions")
    dose = models.ForeignKey(DoseCalculation, on_delete=models.PROTECT, related_name="+")
    bedside_check = models.OneToOneField(BedsideCheck, on_delete=models.PROTECT, related_name="infusion")
    status = models.CharField(max_length=16, choices=InfusionStatus.choices, default=InfusionStatus.VERIFIED)
    administered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    witnessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    volume_infused_ml = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    vitals_before = models.JSONField(default=dict, blank=True)
    vitals_after = models.JSONField(default=dict, blank=True)
    adverse_reaction = models.TextField(blank=True)
    adverse_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    adverse_action = models.TextField(blank=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="infusion_ends_after_start"
            ),
            models.CheckConstraint(condition=~Q(administered_by=F("witnessed_by")), name="infusion_two_people"),
        ]

    def __str__(self) -> str:
        return f"Infusion of {self.product.code} to {self.subject.code}"

    def get_absolute_url(self) -> str:
        return reverse("product:detail", args=[self.product.code])

    def signature_content(self) -> dict[str, object]:
        return {
            f: getattr(self, f)
            for f in (
                "product_id",
                "subject_id",
                "dose_id",
                "started_at",
                "ended_at",
                "volume_infused_ml",
                "vitals_before",
                "vitals_after",
                "adverse_reaction",
                "adverse_grade",
                "adverse_action",
            )
        }
