"""What each step takes. Shape only — types, lengths, known fields; the services decide the rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from lims.models import ContainerCondition, SignatureMeaning
from lims.roles import ROLES
from manufacturing.models import Reagent, VesselType
from samples.services import ReceiptDecision

MAX_ID = 2**63 - 1
BIG = 10**15  # far above any real count, far below the database's limit
_ONE_LINE = RegexValidator(r"^[^\r\n]*$", "One scan per item: no line breaks inside a scan.")


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of silently ignoring a misspelt one."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field: this call does not take it."] for name in unknown}
                )
        return super().to_internal_value(data)


class BenchDateTimeField(serializers.DateTimeField):
    """An aware date and time this century; the services judge past, future and order."""

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        if not 2000 <= parsed.year <= 2100:
            raise serializers.ValidationError("Give a date and time between the years 2000 and 2100.")
        return parsed


class BenchDateField(serializers.DateField):
    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        if not 2000 <= parsed.year <= 2100:
            raise serializers.ValidationError("Give a date between the years 2000 and 2100.")
        return parsed


def text(max_length: int, *, required: bool = True, help_text: str = "") -> serializers.CharField:
    if required:
        return serializers.CharField(max_length=max_length, help_text=help_text)
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, default="", help_text=help_text
    )


def reason(help_text: str = "Kept in the audit trail.") -> serializers.CharField:
    # Blank is accepted here so that the service's own sentence ("Please give a reason for …") answers.
    return serializers.CharField(max_length=2000, required=False, allow_blank=True, default="", help_text=help_text)


def scan(help_text: str) -> serializers.CharField:
    return serializers.CharField(max_length=255, validators=[_ONE_LINE], help_text=help_text)


def when(help_text: str = "When it was done; leave out when recording it now.") -> BenchDateTimeField:
    return BenchDateTimeField(required=False, allow_null=True, default=None, help_text=help_text)


def count(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=-BIG, max_value=BIG, help_text=help_text)


class SignatureSerializer(StrictSerializer):
    """The signer re-types username and password, as on the page, even with a token or a session."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    meaning = serializers.ChoiceField(choices=SignatureMeaning.choices)
    reason = reason("Why you sign; kept with the signature.")


class ScanRequestSerializer(StrictSerializer):
    payload = scan("What the scanner read from the QR code, e.g. S1.FL-000012.ABCDEFGHJKMNPQRS.")


class CustodyRequestSerializer(StrictSerializer):
    scanned_payload = scan("Scan the item in your hands: the step is refused if it is another item.")
    handed_over_by = text(120)
    received_by = text(120)
    location = text(120)
    occurred_at = BenchDateTimeField()
    temperature_c = serializers.DecimalField(max_digits=5, decimal_places=1, help_text="°C at the hand-over.")
    container_condition = serializers.ChoiceField(choices=ContainerCondition.choices)
    note = text(2000, required=False, help_text="Needed when the container is not intact.")


class FeedRequestSerializer(StrictSerializer):
    volume_ml = serializers.DecimalField(max_digits=6, decimal_places=1, help_text="Fresh medium (mL).")
    lot_scans = serializers.ListField(
        child=scan("One reagent lot label."), max_length=20, help_text="Scan each medium and supplement lot used."
    )
    occurred_at = when()
    backdate_reason = reason("Why it is recorded late (needed for a backdated entry).")


class ObserveRequestSerializer(StrictSerializer):
    confluence_percent = count("Confluence (%), 0–100.")
    morphology_ok = serializers.BooleanField(help_text="Spindle-shaped and adherent?")
    note = text(2000, required=False, help_text="Needed when the morphology is not normal.")
    turbidity = serializers.BooleanField(required=False, default=False)
    colour_change = serializers.BooleanField(required=False, default=False)
    microscopy_contamination = serializers.BooleanField(required=False, default=False)
    occurred_at = when()
    backdate_reason = reason("Why it is recorded late (needed for a backdated entry).")


class PassageRequestSerializer(StrictSerializer):
    detachment_lot_scan = scan("The detachment reagent lot (TrypLE, trypsin).")
    media_lot_scans = serializers.ListField(
        child=scan("One reagent lot label."), max_length=20, required=False, default=list
    )
    total_cells = count("Total cells counted.")
    viable_cells = count("Viable cells counted.")
    children = serializers.IntegerField(min_value=-1000, max_value=1000, help_text="Number of new flasks (1–40).")
    vessel_type = serializers.SlugRelatedField(slug_field="name", queryset=VesselType.objects.all())
    cells_per_flask = count("Cells per new flask.")
    medium_volume_ml = serializers.DecimalField(max_digits=6, decimal_places=1)
    density_reason = reason("Why a seeding density outside the protocol's range is accepted.")
    occurred_at = when()
    backdate_reason = reason("Why it is recorded late (needed for a backdated entry).")


class DiscardRequestSerializer(StrictSerializer):
    reason = reason("Why the flask is discarded (required).")


class LotReceiveRequestSerializer(StrictSerializer):
    reagent = serializers.SlugRelatedField(slug_field="name", queryset=Reagent.objects.all())
    supplier = text(120)
    lot_number = text(60)
    expiry_date = BenchDateField()


class ReasonRequestSerializer(StrictSerializer):
    reason = reason("Kept in the audit trail (required).")


class QcResultRequestSerializer(StrictSerializer):
    criterion = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Criterion id of the batch's spec.")
    value = text(40, required=False, help_text="A number, optionally with < or >: “<0.05”.")
    outcome = text(40, required=False, help_text="For qualitative criteria: “no growth”, “negative”, …")
    unit = text(16, required=False)
    method = text(120, required=False)
    instrument = text(80, required=False)
    analyst = text(120, required=False, help_text="Who performed the test (required by the rules).")
    tested_at = when("When the test was performed; now if left out.")
    sample = serializers.CharField(max_length=32, required=False, allow_null=True, default=None)
    retest_of = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True, default=None)


class ReleaseDecisionRequestSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=["released", "conditional", "rejected"])
    justification = reason("Required for a conditional release.")
    signature = SignatureSerializer()


class AspirateReceiveRequestSerializer(StrictSerializer):
    scanned_payload = scan("Scan the tube's label.")
    received_at = BenchDateTimeField()
    temperature_c = serializers.DecimalField(max_digits=4, decimal_places=1, help_text="°C on arrival.")
    container_intact = serializers.BooleanField()
    courier = text(120)
    decision = serializers.ChoiceField(choices=ReceiptDecision.choices, required=False, default=ReceiptDecision.ACCEPT)
    reason = reason("Needed to reject, or to accept outside the transport limits.")


class DoseRequestSerializer(StrictSerializer):
    weight_kg = serializers.DecimalField(max_digits=6, decimal_places=2)
    weight_measured_on = BenchDateField()
    target_million_per_kg = serializers.DecimalField(max_digits=6, decimal_places=3, help_text="×10⁶ cells/kg.")


class DoseVerifyRequestSerializer(StrictSerializer):
    signature = SignatureSerializer()


class TokenRequestSerializer(StrictSerializer):
    name = text(80, help_text="The device or integration that will hold the token.")
    role = serializers.ChoiceField(choices=[(r, r) for r in ROLES])
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField()
    prefix = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    created_at = serializers.DateTimeField(default_timezone=dt.UTC)
    revoked_at = serializers.DateTimeField(allow_null=True, default_timezone=dt.UTC)
    revoke_reason = serializers.CharField(allow_blank=True)


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(help_text="Shown once: store it now. Only its hash is kept.")
