"""The QA workplace for the cleanroom's records: read-only, with each record's history one click away."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from lims.admin import ReadOnlyAuditedAdmin
from manufacturing.models import Batch, CultureEvent, Flask, Harvest, Reagent, ReagentLot, ReagentUse, VesselType
from manufacturing.release_admin import BatchReleaseAdminMixin


class ReagentUseInline(admin.TabularInline):
    """Which lots went into an event: the traceability a recall asks for."""

    model = ReagentUse
    fields = ("lot",)
    readonly_fields = ("lot",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(BatchReleaseAdminMixin, ReadOnlyAuditedAdmin):
    list_display = ("lot_number", "subject", "status", "started_at", "seeded_at", "mnc_total_cells", "started_by")
    list_filter = ("status", "protocol__study")
    search_fields = ("lot_number", "subject__code", "aspirate__code")
    list_select_related = ("subject", "started_by")
    date_hierarchy = "started_at"


@admin.register(Flask)
class FlaskAdmin(ReadOnlyAuditedAdmin):
    list_display = ("code", "batch", "passage_number", "status", "vessel_type", "seeded_at", "cells_seeded", "parent")
    list_filter = ("status", "passage_number", "vessel_type")
    search_fields = ("code", "batch__lot_number", "batch__subject__code")
    list_select_related = ("batch", "vessel_type", "parent")
    date_hierarchy = "seeded_at"


@admin.register(CultureEvent)
class CultureEventAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "occurred_at",
        "flask",
        "kind",
        "recorded_by",
        "volume_ml",
        "confluence_percent",
        "viable_cells",
        "population_doublings",
    )
    list_filter = ("kind", "microscopy_contamination", "turbidity", "colour_change")
    search_fields = ("flask__code", "flask__batch__lot_number", "note")
    list_select_related = ("flask", "recorded_by")
    date_hierarchy = "occurred_at"
    inlines = (ReagentUseInline,)


@admin.register(ReagentLot)
class ReagentLotAdmin(ReadOnlyAuditedAdmin):
    list_display = ("code", "reagent", "lot_number", "supplier", "expiry_date", "status", "received_at")
    list_filter = ("status", "reagent")
    search_fields = ("code", "lot_number", "supplier", "reagent__name")
    list_select_related = ("reagent",)
    date_hierarchy = "expiry_date"


@admin.register(Reagent)
class ReagentAdmin(ReadOnlyAuditedAdmin):
    list_display = ("name", "category")
    list_filter = ("category",)
    search_fields = ("name",)


@admin.register(VesselType)
class VesselTypeAdmin(ReadOnlyAuditedAdmin):
    list_display = ("name", "growth_area_cm2")
    search_fields = ("name",)


@admin.register(Harvest)
class HarvestAdmin(ReadOnlyAuditedAdmin):
    list_display = ("batch", "harvested_at", "viable_cells", "viability_percent", "volume_ml", "recorded_by")
    search_fields = ("batch__lot_number", "batch__subject__code")
    list_select_related = ("batch", "recorded_by")
    date_hierarchy = "harvested_at"
