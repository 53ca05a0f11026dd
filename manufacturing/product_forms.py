"""Forms of the product pages: formulation, dose, custody, bedside check and infusion record."""

from __future__ import annotations

from typing import Any

from django import forms

from lims.signatures import SignatureRequest
from manufacturing.models import ProductStatus
from manufacturing.services.infusion import Handover, InfusionRecord

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
VITALS = (
    ("heart_rate_bpm", "Heart rate (bpm)"),
    ("systolic_mmhg", "Systolic (mmHg)"),
    ("diastolic_mmhg", "Diastolic (mmHg)"),
    ("temperature_c", "Temperature (°C)"),
    ("spo2_percent", "SpO2 (%)"),
    ("respiratory_rate", "Respiratory rate (/min)"),
)


def _number(label: str) -> forms.DecimalField:
    return forms.DecimalField(label=label, widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}))


def _password(label: str = "Password") -> forms.CharField:
    return forms.CharField(label=label, widget=forms.PasswordInput(attrs={"autocomplete": "off"}))


class FormulateForm(forms.Form):
    total_viable_cells_million = _number("Viable cells (×10⁶)")
    volume_ml = _number("Volume (mL)")

    def cells(self) -> int:
        return int(self.cleaned_data["total_viable_cells_million"] * 1_000_000)


class DoseForm(forms.Form):
    weight_kg = _number("Weight (kg)")
    weight_measured_on = forms.DateField(label="Weight measured on", widget=forms.DateInput(attrs={"type": "date"}))
    target_million_per_kg = _number("Target dose (×10⁶ cells/kg)")


class SignForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = _password()
    reason = forms.CharField(label="Reason (kept with the signature)", widget=forms.Textarea(attrs={"rows": 2}))

    def signature(self, meaning: str) -> SignatureRequest:
        data = self.cleaned_data
        return SignatureRequest(
            username=data["username"], password=data["password"], meaning=meaning, reason=data["reason"]
        )


class IssueForm(forms.Form):
    courier = forms.CharField(max_length=100)
    temperature_c = _number("Temperature (°C)")

    def handover(self) -> Handover:
        return Handover(courier=self.cleaned_data["courier"], temperature_c=self.cleaned_data["temperature_c"])


class ReceiveForm(IssueForm):
    scanned = forms.CharField(
        label="Scan the bag",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off", "class": "scan"}),
    )
    ward = forms.CharField(max_length=100)

    field_order = ["scanned", "courier", "temperature_c", "ward"]


class DisposeForm(forms.Form):
    disposition = forms.ChoiceField(
        label="The product is",
        choices=[(s.value, s.label) for s in (ProductStatus.RETURNED, ProductStatus.DESTROYED)],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Reason (kept in the product's history)", max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class BedsideForm(forms.Form):
    wristband = forms.CharField(
        label="1. Scan the patient's wristband",
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "class": "scan", "data-next": "id_bag"}
        ),
    )
    bag = forms.CharField(
        label="2. Scan the bag",
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "scan", "data-next": "id_username"}),
    )
    username = forms.CharField(label="Second clinician: username", max_length=150)
    password = _password("Second clinician: password")

    def witness(self) -> SignatureRequest:
        data = self.cleaned_data
        return SignatureRequest(
            username=data["username"],
            password=data["password"],
            meaning="witnessed",
            reason="two-person bedside check",
        )


class InfusionForm(forms.Form):
    started_at = forms.DateTimeField(label="Started", widget=DATETIME)
    ended_at = forms.DateTimeField(label="Ended", widget=DATETIME)
    volume_infused_ml = _number("Volume infused (mL)")
    adverse_reaction = forms.CharField(
        label="Adverse reaction (if any)", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    adverse_grade = forms.IntegerField(label="Grade (1–5)", required=False)
    adverse_action = forms.CharField(label="Action taken", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    password = _password("Your password (administered)")
    witness_username = forms.CharField(label="Second clinician: username (witnessed)", max_length=150)
    witness_password = _password("Second clinician: password")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for when in ("before", "after"):
            for name, label in VITALS:
                self.fields[f"{name}_{when}"] = _number(f"{label} {when}")

    def vitals(self, when: str) -> dict[str, object]:
        return {name: self.cleaned_data[f"{name}_{when}"] for name, _ in VITALS}

    def vital_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(label, self[f"{name}_before"], self[f"{name}_after"]) for name, label in VITALS]

    def record(self) -> InfusionRecord:
        data = self.cleaned_data
        return InfusionRecord(
            started_at=data["started_at"],
            ended_at=data["ended_at"],
            volume_infused_ml=data["volume_infused_ml"],
            vitals_before=self.vitals("before"),
            vitals_after=self.vitals("after"),
            adverse_reaction=data["adverse_reaction"],
            adverse_grade=data["adverse_grade"],
            adverse_action=data["adverse_action"],
        )

    def signatures(self, username: str) -> tuple[SignatureRequest, SignatureRequest]:
        data = self.cleaned_data
        return (
            SignatureRequest(username=username, password=data["password"], meaning="administered", reason="infusion"),
            SignatureRequest(
                username=data["witness_username"],
                password=data["witness_password"],
                meaning="witnessed",
                reason="infusion",
            ),
        )
