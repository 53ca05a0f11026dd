"""Forms of the cross-cutting pages. They validate shape; the services decide the rules."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from lims.models import ContainerCondition, SignatureMeaning


class ScanForm(forms.Form):
    payload = forms.CharField(
        label="Scan or type a label",
        max_length=255,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "inputmode": "text",
                "class": "scan-input",
            }
        ),
    )


class CustodyForm(forms.Form):
    scanned_payload = forms.CharField(
        label="Scan the item's label to confirm it is in your hands",
        max_length=255,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off", "class": "scan-input"}),
    )
    handed_over_by = forms.CharField(max_length=120)
    received_by = forms.CharField(max_length=120)
    location = forms.CharField(max_length=120)
    occurred_at = forms.DateTimeField(
        label="Hand-over date and time",
        initial=timezone.now,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    temperature_c = forms.DecimalField(
        label="Temperature (°C)", max_digits=4, decimal_places=1, min_value=-200, max_value=60
    )
    container_condition = forms.ChoiceField(choices=ContainerCondition.choices, initial=ContainerCondition.INTACT)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SignatureForm(forms.Form):
    """Signing always re-asks for username and password (21 CFR 11.200)."""

    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    meaning = forms.ChoiceField(choices=SignatureMeaning.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: object, meanings: set[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["meaning"].choices = [c for c in SignatureMeaning.choices if c[0] in meanings]  # type: ignore[attr-defined]
