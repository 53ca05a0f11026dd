"""What each record looks like through the API: codes for links, usernames for people, never a name of a subject."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from rest_framework import serializers

from lims.models import CustodyEvent, Deviation, Reminder
from manufacturing.models import (
    Batch,
    CultureEvent,
    DoseCalculation,
    FinalProduct,
    Flask,
    Infusion,
    QcResult,
    ReagentLot,
)
from samples.models import Aspirate, AssayResult, Study, Subject


class UtcDateTimeField(serializers.DateTimeField):
    """Machines read UTC: every time leaves the API as ISO 8601 with a Z."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(*args, **kwargs)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UtcDateTimeField,
    }


def _code(source: str) -> serializers.CharField:
    return serializers.CharField(source=source, read_only=True)


def _nullable_code(source: str) -> serializers.CharField:
    return serializers.CharField(source=source, read_only=True, allow_null=True, default=None)


class StudySerializer(ModelSerializer):
    class Meta:
        model = Study
        fields = ("code", "registry_id", "title", "phase", "sponsor", "planned_enrolment", "created_at")


class SubjectSerializer(ModelSerializer):
    """Pseudonymous: the code, sex and dates of the study — Stroma holds no name and shows no date of birth."""

    study = _code("study.code")
    protocol_version = serializers.IntegerField(source="protocol.version", read_only=True)

    class Meta:
        model = Subject
        fields = (
            "code",
            "study",
            "protocol_version",
            "sequence",
            "sex",
            "status",
            "status_reason",
            "screening_date",
            "consent_date",
            "registered_at",
        )


class AspirateSerializer(ModelSerializer):
    subject = _code("subject.code")
    study = _code("subject.study.code")

    class Meta:
        model = Aspirate
        fields = (
            "code",
            "subject",
            "study",
            "status",
            "collected_at",
            "site",
            "volume_ml",
            "anticoagulant",
            "dispatched_at",
            "received_at",
            "receipt_temperature_c",
            "container_intact",
            "hours_in_transit",
            "receipt_findings",
            "receipt_reason",
        )


class BatchSerializer(ModelSerializer):
    subject = _code("subject.code")
    study = _code("subject.study.code")
    aspirate = _code("aspirate.code")
    protocol_version = serializers.IntegerField(source="protocol.version", read_only=True)
    specification_version = serializers.IntegerField(
        source="specification.version", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Batch
        fields = (
            "lot_number",
            "subject",
            "study",
            "aspirate",
            "protocol_version",
            "status",
            "status_reason",
            "started_at",
            "mnc_total_cells",
            "mnc_viability_percent",
            "seeded_at",
            "specification_version",
            "testing_started_at",
            "decided_at",
            "needs_rereview",
        )


class FlaskSerializer(ModelSerializer):
    batch = _code("batch.lot_number")
    parent = _nullable_code("parent.code")
    vessel_type = _code("vessel_type.name")

    class Meta:
        model = Flask
        fields = (
            "code",
            "batch",
            "parent",
            "vessel_type",
            "passage_number",
            "status",
            "seeded_at",
            "cells_seeded",
            "medium_volume_ml",
            "seeding_density_per_cm2",
            "density_warning_reason",
            "cumulative_pd_at_seeding",
        )


class CultureEventSerializer(ModelSerializer):
    flask = _code("flask.code")
    batch = _code("flask.batch.lot_number")
    recorded_by = _code("recorded_by.username")
    reagent_lots = serializers.SerializerMethodField()

    class Meta:
        model = CultureEvent
        fields = (
            "id",
            "flask",
            "batch",
            "kind",
            "occurred_at",
            "recorded_at",
            "recorded_by",
            "backdate_reason",
            "note",
            "volume_ml",
            "confluence_percent",
            "morphology_ok",
            "turbidity",
            "colour_change",
            "microscopy_contamination",
            "total_cells",
            "viable_cells",
            "viability_percent",
            "population_doublings",
            "doubling_time_hours",
            "reagent_lots",
        )

    def get_reagent_lots(self, event: CultureEvent) -> list[str]:
        return sorted(use.lot.code for use in event.reagent_uses.all())


class ReagentLotSerializer(ModelSerializer):
    reagent = _code("reagent.name")
    category = _code("reagent.category")
    received_by = _code("received_by.username")

    class Meta:
        model = ReagentLot
        fields = (
            "code",
            "reagent",
            "category",
            "supplier",
            "lot_number",
            "expiry_date",
            "status",
            "status_reason",
            "received_at",
            "received_by",
        )


class QcResultSerializer(ModelSerializer):
    """A QC result with the flag stored when it was entered (never recomputed)."""

    batch = _code("batch.lot_number")
    criterion = serializers.IntegerField(source="criterion_id", read_only=True)
    attribute = _code("criterion.attribute")
    display_value = serializers.CharField(read_only=True)
    entered_by = _code("entered_by.username")
    sample = _nullable_code("sample.code")
    investigation = _nullable_code("investigation.code")
    retest_of = serializers.IntegerField(source="retest_of_id", read_only=True, allow_null=True)

    class Meta:
        model = QcResult
        fields = (
            "id",
            "batch",
            "criterion",
            "attribute",
            "sample",
            "numeric_value",
            "qualifier",
            "qualitative_outcome",
            "unit",
            "display_value",
            "method",
            "instrument",
            "analyst",
            "tested_at",
            "entered_by",
            "entered_at",
            "flag",
            "flag_explanation",
            "status",
            "status_reason",
            "retest_of",
            "investigation",
        )


class DeviationSerializer(ModelSerializer):
    record_type = _code("content_type.model")
    record_id = serializers.IntegerField(source="object_id", read_only=True)
    opened_by = _code("opened_by.username")

    class Meta:
        model = Deviation
        fields = (
            "code",
            "source",
            "status",
            "description",
            "subject_code",
            "record_type",
            "record_id",
            "opened_by",
            "opened_at",
        )


class ProductSerializer(ModelSerializer):
    batch = _code("batch.lot_number")
    subject = _code("batch.subject.code")
    study = _code("batch.subject.study.code")
    statement = serializers.CharField(read_only=True)

    class Meta:
        model = FinalProduct
        fields = (
            "code",
            "batch",
            "subject",
            "study",
            "status",
            "status_reason",
            "formulated_at",
            "total_viable_cells",
            "volume_ml",
            "expires_at",
            "storage",
            "statement",
            "transport_flags",
        )


class DoseSerializer(ModelSerializer):
    product = _code("product.code")
    subject = _code("subject.code")
    calculated_by = _code("calculated_by.username")
    verified_by = _nullable_code("verified_by.username")

    class Meta:
        model = DoseCalculation
        fields = (
            "id",
            "product",
            "subject",
            "status",
            "status_reason",
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
            "calculated_by",
            "calculated_at",
            "verified_by",
            "verified_at",
        )


class CustodyEventSerializer(ModelSerializer):
    label = _code("label.code")
    item_kind = _code("label.kind")
    subject_code = _code("label.subject_code")
    recorded_by = _code("recorded_by.username")

    class Meta:
        model = CustodyEvent
        fields = (
            "id",
            "label",
            "item_kind",
            "subject_code",
            "handed_over_by",
            "received_by",
            "location",
            "occurred_at",
            "temperature_c",
            "container_condition",
            "note",
            "recorded_by",
            "recorded_at",
        )


class InfusionSerializer(ModelSerializer):
    product = _code("product.code")
    subject = _code("subject.code")
    dose = serializers.IntegerField(source="dose_id", read_only=True)
    administered_by = _code("administered_by.username")
    witnessed_by = _code("witnessed_by.username")
    vitals_before = serializers.DictField(child=serializers.CharField(), read_only=True)
    vitals_after = serializers.DictField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Infusion
        fields = (
            "id",
            "product",
            "subject",
            "dose",
            "status",
            "administered_by",
            "witnessed_by",
            "started_at",
            "ended_at",
            "volume_infused_ml",
            "vitals_before",
            "vitals_after",
            "adverse_reaction",
            "adverse_grade",
            "adverse_action",
        )


class FollowUpResultSerializer(ModelSerializer):
    sample = _code("sample.code")
    subject = _code("sample.subject.code")
    study = _code("sample.subject.study.code")
    visit = _code("sample.visit.name")
    visit_month = serializers.IntegerField(source="sample.visit.month", read_only=True)
    analyte = _code("analyte.name")
    unit = _code("analyte.unit")
    entered_by = _code("entered_by.username")

    class Meta:
        model = AssayResult
        fields = (
            "id",
            "sample",
            "subject",
            "study",
            "visit",
            "visit_month",
            "analyte",
            "unit",
            "value",
            "entered_by",
            "entered_at",
        )


class ReminderSerializer(ModelSerializer):
    class Meta:
        model = Reminder
        fields = (
            "id",
            "kind",
            "item_code",
            "subject_code",
            "title",
            "audience_role",
            "due_at",
            "status",
            "created_at",
            "acknowledged_at",
            "snoozed_until",
            "escalated_at",
            "resolved_at",
            "resolution",
        )


class ScanResultSerializer(serializers.Serializer):
    """The item a scanned label opens."""

    scan_id = serializers.IntegerField()
    type = serializers.CharField(help_text="subject, aspirate, flask, qc_sample, product, blood_sample or reagent_lot")
    kind = serializers.CharField(help_text="The label kind: WB, AS, FL, QC, PB, BL, RL.")
    code = serializers.CharField()
    subject_code = serializers.CharField(allow_blank=True)
    url = serializers.CharField(help_text="The item's page.")
    api_url = serializers.CharField(allow_null=True, help_text="The item in the API, where it has an endpoint.")


class FlaskStepSerializer(serializers.Serializer):
    """What a culture step recorded, and where the flask stands now."""

    event = CultureEventSerializer()
    flask_status = serializers.CharField()
    children = serializers.ListField(child=serializers.CharField(), help_text="Flasks seeded by a passage.")
    deviation = serializers.CharField(allow_null=True, help_text="The deviation a contamination opened, if any.")


class RecallSerializer(serializers.Serializer):
    lot = ReagentLotSerializer()
    flasks = serializers.ListField(child=serializers.CharField())
    batches = serializers.ListField(child=serializers.CharField())


def as_data(serializer_class: type[serializers.Serializer], instance: Any) -> Any:
    return serializer_class(instance).data
