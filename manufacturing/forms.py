"""Forms of the cleanroom pages. They check shape (a number is a number); the services decide the rules.

Reagent lots arrive as scanned label payloads, one per line, and are turned into lots by
:func:`lots_from_scans` — the one place that does it, for every form that takes lots.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from lims.models import LabelKind
from lims.services import scan_resolve
from manufacturing.models import LotStatus, Reagent, ReagentLot, VesselType

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def lots_from_scans(text: str, *, acting_user: Any) -> list[ReagentLot]:
    """Resolve scanned payloads, one per line, to reagent lots; every scan is recorded.

    A line that is not a genuine reagent-lot label is refused by its line number, so the
    operator knows which scan to repeat. Scanning the same lot twice lists it once.
    """
    found: list[ReagentLot] = []
    problems: list[str] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        result = scan_resolve(payload=line, acting_user=acting_user)
        label = result.label
        if label is None:
            problems.append(f"Line {number} is not a reagent lot label: {result.error}")
        elif label.kind != LabelKind.REAGENT_LOT or not isinstance(label.item, ReagentLot):
            kind = label.get_kind_display().lower()
            article = "an" if kind[:1] in "aeiou" else "a"
            problems.append(
                f"Line {number} is not a reagent lot label: {label.code} is {article} {kind}. "
                "Scan the label on the reagent's bottle or bag."
            )
        elif label.item not in found:
            found.append(label.item)
    if problems:
        raise ValidationError(problems)
    return found


class CellCountField(forms.CharField):
    """Cells as typed at the bench (4200000, 4,200,000 or 4 200 000), passed on as typed.

    ``lims.values.cell_count`` in the service is the one place that reads the number, and its
    sentence names the field when the text is not a count.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"})
        )
        super().__init__(**kwargs)


def _lot_scan_widget(rows: int = 3) -> forms.Textarea:
    # A textarea, so the Enter that a wedge scanner sends after each label starts a new line
    # instead of submitting the form half-filled.
    return forms.Textarea(
        attrs={
            "rows": rows,
            "class": "scan-input lot-scan",
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
        }
    )


def _volume_field(label: str = "Medium volume (mL)") -> forms.DecimalField:
    # As many digits as the column that keeps it (Flask and CultureEvent volume_ml: 6, one after the point):
    # one more is refused by PostgreSQL as a numeric overflow after the form has accepted it.
    return forms.DecimalField(
        label=label,
        max_digits=6,
        decimal_places=1,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )


class CleanroomForm(forms.Form):
    """Knows who is filling it in, because a lot scan is recorded under that person."""

    lot_fields: tuple[str, ...] = ()
    backdate_field_names: tuple[str, ...] = ()

    def __init__(self, *args: Any, acting_user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting_user = acting_user

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.lot_fields:
            if name in cleaned:
                try:
                    cleaned[name] = lots_from_scans(cleaned[name], acting_user=self.acting_user)
                except ValidationError as exc:
                    self.add_error(name, exc)
        return cleaned

    def main_fields(self) -> list[forms.BoundField]:
        return [f for f in self.visible_fields() if f.name not in self.backdate_field_names]

    def backdate_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.backdate_field_names]


class BackdatedForm(CleanroomForm):
    """A step may be recorded after it was done; then the time it was done and why it is late."""

    backdate_field_names = ("occurred_at", "backdate_reason")

    occurred_at = forms.DateTimeField(
        label="When it was done",
        required=False,
        help_text="Leave empty when you record it now.",
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    backdate_reason = forms.CharField(
        label="Why it is recorded late", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class TokenMixin(forms.Form):
    """A fresh token per page load: a double-tapped submit reaches the service twice but records once."""

    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client_token"].initial = uuid.uuid4().hex

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # A hidden field's own error is never shown on the page: say it where the person reads it.
        if self.has_error("client_token"):
            self.add_error(None, "This form was altered or has expired: reload the page and enter it again.")
        return cleaned


class BatchStartForm(CleanroomForm):
    mnc_total_cells = CellCountField(label="Mononuclear cells counted (total)")
    mnc_viability_percent = forms.DecimalField(
        label="MNC viability (%)", max_digits=5, decimal_places=1, widget=forms.NumberInput(attrs={"step": "0.1"})
    )


class SeedForm(BackdatedForm):
    lot_fields = ("lots",)

    flask_count = forms.IntegerField(label="Number of flasks", initial=2)
    vessel_type = forms.ModelChoiceField(queryset=VesselType.objects.all(), label="Vessel type", empty_label=None)
    cells_per_flask = CellCountField(label="Cells per flask")
    medium_volume_ml = _volume_field()
    lots = forms.CharField(
        label="Scan each lot used (medium, supplement)",
        help_text="One label per line: the scanner's Enter starts the next line.",
        widget=_lot_scan_widget(),
    )
    density_reason = forms.CharField(
        label="Why this seeding density is accepted",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class FeedForm(TokenMixin, BackdatedForm):
    lot_fields = ("lots",)

    lots = forms.CharField(
        label="Scan each lot used (medium, supplement)",
        help_text="One label per line: the scanner's Enter starts the next line.",
        widget=_lot_scan_widget(),
    )
    volume_ml = _volume_field("Fresh medium (mL)")


YES_NO = [("yes", "Yes, normal"), ("no", "No: describe it in the note")]


class ObserveForm(TokenMixin, BackdatedForm):
    confluence_percent = forms.IntegerField(
        label="Confluence (%)", widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "5"})
    )
    morphology_ok = forms.TypedChoiceField(
        label="Morphology normal (spindle-shaped, adherent)?",
        choices=YES_NO,
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    turbidity = forms.BooleanField(label="Medium turbid", required=False)
    colour_change = forms.BooleanField(label="Medium colour changed", required=False)
    microscopy_contamination = forms.BooleanField(label="Contamination seen under the microscope", required=False)


class PassageForm(TokenMixin, BackdatedForm):
    lot_fields = ("detachment_lot", "media_lots")

    detachment_lot = forms.CharField(
        label="Scan the detachment reagent lot (TrypLE, trypsin)",
        help_text="One label.",
        widget=_lot_scan_widget(rows=2),
    )
    media_lots = forms.CharField(
        label="Scan the medium and supplement lots for the new flasks",
        required=False,
        help_text="One label per line.",
        widget=_lot_scan_widget(),
    )
    total_cells = CellCountField(label="Total cells counted")
    viable_cells = CellCountField(label="Viable cells counted")
    children = forms.IntegerField(label="Number of new flasks", initial=2)
    vessel_type = forms.ModelChoiceField(queryset=VesselType.objects.all(), label="New vessel type", empty_label=None)
    cells_per_flask = CellCountField(label="Cells per new flask")
    medium_volume_ml = _volume_field("Medium per new flask (mL)")
    density_reason = forms.CharField(
        label="Why this seeding density is accepted",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        lots = cleaned.get("detachment_lot")
        if isinstance(lots, list):
            if len(lots) != 1:
                self.add_error("detachment_lot", "Scan exactly one detachment reagent lot.")
            else:
                cleaned["detachment_lot"] = lots[0]
        return cleaned


class DiscardForm(TokenMixin, CleanroomForm):
    reason = forms.CharField(label="Why the flask is discarded", widget=forms.Textarea(attrs={"rows": 3}))


class HarvestForm(BackdatedForm):
    viable_cells = CellCountField(label="Viable cells harvested (pooled)")
    viability_percent = forms.DecimalField(
        label="Viability (%)", max_digits=5, decimal_places=1, widget=forms.NumberInput(attrs={"step": "0.1"})
    )
    volume_ml = forms.DecimalField(  # Harvest.volume_ml holds 7 digits
        label="Harvest volume (mL)", max_digits=7, decimal_places=1, widget=forms.NumberInput(attrs={"step": "0.1"})
    )


class LotReceiveForm(CleanroomForm):
    reagent = forms.ModelChoiceField(queryset=Reagent.objects.all(), label="Reagent")
    supplier = forms.CharField(max_length=120)
    lot_number = forms.CharField(label="Supplier's lot number", max_length=60)
    expiry_date = forms.DateField(label="Expiry date", widget=forms.DateInput(attrs={"type": "date"}))


class ReasonForm(CleanroomForm):
    reason = forms.CharField(label="Reason (kept in the audit trail)", widget=forms.Textarea(attrs={"rows": 3}))


class LotFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All"), *LotStatus.choices], required=False)
