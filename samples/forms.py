"""Forms of the samples pages. They check shape (types, required fields); the services decide the rules."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from samples.models import Analyte, EligibilityCriterion, FollowUpVisit, ProtocolVersion, Sex
from samples.selectors import PARAMETER_GROUPS
from samples.services import ReceiptDecision


def _datetime(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        initial=timezone.now,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def _date(label: str, **kwargs: Any) -> forms.DateField:
    return forms.DateField(label=label, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), **kwargs)


def _number(label: str, *, required: bool = True, **attrs: object) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=required, widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal", **attrs})
    )


def _count(label: str, **attrs: object) -> forms.IntegerField:
    # The bounds go to the browser only (number pad, spinner); the service refuses out-of-range values in words.
    return forms.IntegerField(label=label, widget=forms.NumberInput(attrs={"inputmode": "numeric", **attrs}))


def _reason(label: str, *, required: bool = True) -> forms.CharField:
    return forms.CharField(label=label, required=required, widget=forms.Textarea(attrs={"rows": 2}))


_YES_NO = [("yes", "Yes"), ("no", "No")]


def _yes_no(label: str, *, required: bool = True) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label, choices=_YES_NO, coerce=lambda v: v == "yes", required=required, widget=forms.RadioSelect
    )


class SignForm(forms.Form):
    """Signing always re-asks for username and password (21 CFR 11.200); the page fixes the meaning."""

    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    reason = _reason("Reason (kept with the signature)")


_COLUMN_MAXIMUM = {
    f.name: 32767 if isinstance(f, models.PositiveSmallIntegerField) else 2_147_483_647
    for f in ProtocolVersion._meta.concrete_fields
    if isinstance(f, models.PositiveSmallIntegerField | models.PositiveIntegerField)
}


class ProtocolReviseForm(forms.Form):
    """The in-force version's numeric parameters, pre-filled; only those changed are sent."""

    change_summary = _reason("What changes, and why")

    def __init__(self, *args: Any, current: ProtocolVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current = current
        self.groups: list[tuple[str, list[str]]] = []
        for group, rows in PARAMETER_GROUPS:
            for name, label, unit in rows:
                model_field = ProtocolVersion._meta.get_field(name)
                assert isinstance(model_field, models.Field)
                field = model_field.formfield(label=f"{label} ({unit})")
                assert field is not None
                field.initial = getattr(current, name)
                if isinstance(field, forms.IntegerField) and name in _COLUMN_MAXIMUM:
                    # The column's own limit, on every database: above it PostgreSQL fails on saving (a 500)
                    # and SQLite keeps any 64-bit number.
                    field.max_value = _COLUMN_MAXIMUM[name]
                    field.validators.append(MaxValueValidator(field.max_value))
                    field.widget.attrs["max"] = field.max_value
                field.widget.attrs.setdefault("inputmode", "decimal")
                self.fields[name] = field
            self.groups.append((group, [name for name, _, _ in rows]))
        self.order_fields([name for _, names in self.groups for name in names] + ["change_summary"])

    def grouped(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(group, [self[name] for name in names]) for group, names in self.groups]

    def changes(self) -> dict[str, object]:
        return {
            name: value
            for _, names in self.groups
            for name in names
            if (value := self.cleaned_data[name]) != getattr(self.current, name)
        }


class SubjectRegisterForm(forms.Form):
    sex = forms.ChoiceField(choices=Sex.choices, widget=forms.RadioSelect)
    date_of_birth = _date("Date of birth")
    screening_date = _date("Screening date", initial=timezone.localdate)
    consent_date = _date("Date of informed consent")


class EligibilityChecklistForm(forms.Form):
    """One yes/no per criterion of the subject's protocol; items may be answered over several visits."""

    def __init__(
        self, *args: Any, criteria: Iterable[EligibilityCriterion], answers: dict[int, bool], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        for criterion in self.criteria:
            field = _yes_no(f"{criterion.get_kind_display()}: {criterion.text}", required=False)
            if criterion.pk in answers:
                field.initial = "yes" if answers[criterion.pk] else "no"
            self.fields[f"criterion_{criterion.pk}"] = field

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.criteria and all(cleaned.get(f"criterion_{c.pk}") in (None, "") for c in self.criteria):
            raise forms.ValidationError("Answer at least one item of the checklist.")
        return cleaned

    def answers(self) -> dict[int, bool]:
        return {
            c.pk: self.cleaned_data[f"criterion_{c.pk}"]
            for c in self.criteria
            if self.cleaned_data.get(f"criterion_{c.pk}") not in (None, "")
        }


class ReasonForm(forms.Form):
    reason = _reason("Reason (kept in the audit trail)")


class AspirateCollectForm(forms.Form):
    collected_at = _datetime("Collected at (date and time)")
    volume_ml = _number("Volume (mL)", min="0.1", max="500")
    site = forms.CharField(max_length=80, initial="posterior iliac crest")
    anticoagulant = forms.CharField(max_length=40, initial="heparin")


class AspirateDispatchForm(forms.Form):
    courier = forms.CharField(label="Courier (who takes the tube)", max_length=120)
    temperature_c = _number("Temperature at dispatch (°C)")
    dispatched_at = _datetime("Dispatched at (date and time)")
    location = forms.CharField(label="Handed over at", max_length=120, initial="Clinic")


class AspirateReceiveForm(forms.Form):
    scanned_payload = forms.CharField(
        label="Scan the tube's label",
        max_length=255,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "spellcheck": "false", "class": "scan-input"}
        ),
    )
    received_at = _datetime("Received at (date and time)")
    temperature_c = _number("Temperature on arrival (°C)")
    container_intact = _yes_no("Container intact?")
    courier = forms.CharField(label="Courier (who hands the tube over)", max_length=120)
    decision = forms.ChoiceField(
        choices=ReceiptDecision.choices, initial=ReceiptDecision.ACCEPT, widget=forms.RadioSelect
    )
    reason = _reason("Reason (needed to reject, or to accept outside the limits)", required=False)


class FollowUpSampleForm(forms.Form):
    visit = forms.ModelChoiceField(queryset=FollowUpVisit.objects.none(), empty_label=None)
    collected_at = _datetime("Collected at (date and time)")

    def __init__(self, *args: Any, visits: Iterable[FollowUpVisit], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        visit_field: forms.ModelChoiceField = self.fields["visit"]  # type: ignore[assignment]
        visit_field.queryset = FollowUpVisit.objects.filter(pk__in=[v.pk for v in visits]).order_by("month")


class AssayResultsForm(forms.Form):
    """One optional value per analyte of the protocol; a changed value needs the correction reason."""

    reason = _reason("Reason for a correction (only when changing an entered value)", required=False)

    def __init__(self, *args: Any, analytes: Iterable[Analyte], entered: dict[int, Decimal], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.analytes = list(analytes)
        for analyte in self.analytes:
            field = _number(f"{analyte.name} ({analyte.unit})", required=False)
            if analyte.definition:
                field.help_text = analyte.definition
            if analyte.pk in entered:
                field.initial = format(entered[analyte.pk].normalize(), "f")
            self.fields[f"analyte_{analyte.pk}"] = field
        self.order_fields([f"analyte_{a.pk}" for a in self.analytes] + ["reason"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any(cleaned.get(f"analyte_{a.pk}") is not None for a in self.analytes):
            raise forms.ValidationError("Enter at least one result.")
        return cleaned

    def filled(self) -> list[tuple[Analyte, Decimal]]:
        return [
            (a, self.cleaned_data[f"analyte_{a.pk}"])
            for a in self.analytes
            if self.cleaned_data.get(f"analyte_{a.pk}") is not None
        ]


class Das28Form(forms.Form):
    visit = forms.ModelChoiceField(queryset=FollowUpVisit.objects.none(), empty_label=None)
    assessed_on = _date("Assessed on", initial=timezone.localdate)
    tender = _count("Tender joints (of 28)", min=0, max=28)
    swollen = _count("Swollen joints (of 28)", min=0, max=28)
    esr_mm_h = _number("ESR (mm/h)", min="0")
    patient_vas_mm = _count("Patient global health, VAS (0–100 mm)", min=0, max=100)
    reason = _reason("Reason for a correction (only when changing a recorded assessment)", required=False)

    def __init__(self, *args: Any, visits: Iterable[FollowUpVisit], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        visit_field: forms.ModelChoiceField = self.fields["visit"]  # type: ignore[assignment]
        visit_field.queryset = FollowUpVisit.objects.filter(pk__in=[v.pk for v in visits]).order_by("month")
