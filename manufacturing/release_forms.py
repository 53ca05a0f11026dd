"""Forms of the QC and QA pages. They check shape (a date is a date); the release services decide the rules.

A QC value is passed on as typed ("<0.05", "98.5"): ``qc_result_record`` is the one place that
reads a qualified value and refuses one it cannot judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms

from lims.signatures import SignatureRequest
from manufacturing.documents import limit_text
from manufacturing.models import (
    Batch,
    BatchStatus,
    Classification,
    Comparator,
    EmKind,
    Grade,
    QcSample,
    SpecCriterion,
)
from manufacturing.services.release import QUALITATIVE, ResultEntry

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _datetime(label: str, *, required: bool = True, help_text: str = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )


def _text(label: str, *, rows: int = 2, help_text: str = "") -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, widget=forms.Textarea(attrs={"rows": rows}))


# --- Signatures -----------------------------------------------------------------------------------


class SignatureForm(forms.Form):
    """Signing always re-asks for username and password (21 CFR 11.200); the page fixes the meaning."""

    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    reason = _text("Reason (kept with the signature)")

    def signature(self, meaning: str) -> SignatureRequest:
        data = self.cleaned_data
        return SignatureRequest(
            username=data["username"], password=data["password"], meaning=meaning, reason=data["reason"]
        )


class ReleaseDecisionForm(SignatureForm):
    """QA's decision on a batch; a conditional release also needs its justification."""

    justification = _text(
        "Justification for releasing before final sterility",
        rows=3,
        help_text="Why the patient cannot wait for the 14-day sterility result; kept with the signature.",
    )

    def __init__(self, *args: Any, decision: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if decision != BatchStatus.CONDITIONALLY_RELEASED:
            del self.fields["justification"]


class DeviationCloseForm(SignatureForm):
    classification = forms.ChoiceField(choices=Classification.choices, widget=forms.RadioSelect)
    impact_assessment = _text("Impact on the product and the patient", rows=3)
    corrective_action = _text("Corrective and preventive action", rows=3)
    meaning = forms.ChoiceField(
        label="Meaning of your signature",
        choices=[("reviewed", "Reviewed"), ("approved", "Approved")],
        initial="reviewed",
        widget=forms.RadioSelect,
    )
    field_order = ("classification", "impact_assessment", "corrective_action", "username", "password", "meaning")


# --- Specifications --------------------------------------------------------------------------------


class SpecificationDraftForm(forms.Form):
    change_summary = _text("What this version is, and why", help_text="Kept in the audit trail.")
    allows_conditional_release = forms.BooleanField(
        label="QA may release before final sterility, as a signed and justified exception", required=False
    )


# --- QC results -------------------------------------------------------------------------------------

_OUTCOME_CHOICES: dict[str, list[tuple[str, str]]] = {
    comparator: [("", "—"), *((outcome, outcome) for outcome in outcomes)]
    for comparator, outcomes in QUALITATIVE.items()
}


def enterable(criterion: SpecCriterion) -> bool:
    """Criteria an analyst reports: the passage comes from the batch record and the dose is judged at dose time."""
    return criterion.comparator not in (Comparator.PASSAGE, Comparator.DOSE)


@dataclass(frozen=True)
class ResultRow:
    """One criterion's fields, in fixed columns so that numeric and qualitative rows line up."""

    criterion: SpecCriterion
    cells: list[forms.BoundField | None]
    qualitative: bool

    @property
    def limit(self) -> str:
        return limit_text(self.criterion)


class ResultFieldsMixin(forms.Form):
    """One row of result fields per criterion, named ``c<pk>_<field>``."""

    COLUMNS = (("value", "outcome"), ("unit",), ("method",), ("instrument",), ("analyst",), ("tested_at",))

    def add_row(self, criterion: SpecCriterion, *, analyst: str) -> None:
        prefix = f"c{criterion.pk}_"
        if criterion.comparator in QUALITATIVE:
            self.fields[prefix + "outcome"] = forms.ChoiceField(
                label="Outcome", required=False, choices=_OUTCOME_CHOICES[criterion.comparator]
            )
        else:
            self.fields[prefix + "value"] = forms.CharField(
                label=f"Value ({criterion.unit})" if criterion.unit else "Value",
                required=False,
                max_length=24,
                help_text="A qualified value is typed as read: <0.05",
                widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}),
            )
            self.fields[prefix + "unit"] = forms.CharField(
                label="Unit", required=False, max_length=16, initial=criterion.unit
            )
        self.fields[prefix + "method"] = forms.CharField(
            label="Method", required=False, max_length=120, initial=criterion.method
        )
        self.fields[prefix + "instrument"] = forms.CharField(label="Instrument", required=False, max_length=80)
        self.fields[prefix + "analyst"] = forms.CharField(
            label="Analyst", required=False, max_length=120, initial=analyst
        )
        self.fields[prefix + "tested_at"] = _datetime("Tested at", required=False, help_text="Empty: now")

    def row(self, criterion: SpecCriterion) -> ResultRow:
        prefix = f"c{criterion.pk}_"
        cells: list[forms.BoundField | None] = []
        for names in self.COLUMNS:
            present = [self[prefix + name] for name in names if prefix + name in self.fields]
            cells.append(present[0] if present else None)
        return ResultRow(criterion, cells, criterion.comparator in QUALITATIVE)

    def filled(self, criterion: SpecCriterion) -> bool:
        data = self.cleaned_data
        prefix = f"c{criterion.pk}_"
        return bool((data.get(prefix + "value") or "").strip() or data.get(prefix + "outcome"))

    def entry(self, criterion: SpecCriterion) -> ResultEntry:
        data = self.cleaned_data
        prefix = f"c{criterion.pk}_"
        return ResultEntry(
            value=data.get(prefix + "value") or "",
            outcome=data.get(prefix + "outcome") or "",
            unit=data.get(prefix + "unit") or "",
            method=data.get(prefix + "method") or "",
            instrument=data.get(prefix + "instrument") or "",
            analyst=data.get(prefix + "analyst") or "",
            tested_at=data.get(prefix + "tested_at"),
        )


class QcResultsForm(ResultFieldsMixin):
    """The results of one batch: one row per criterion still waiting for a valid result."""

    sample = forms.ModelChoiceField(
        label="QC sample tested (optional)", queryset=QcSample.objects.none(), required=False
    )

    def __init__(
        self, *args: Any, criteria: Iterable[SpecCriterion], samples: Iterable[QcSample], analyst: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        sample_field = self.fields["sample"]
        assert isinstance(sample_field, forms.ModelChoiceField)
        sample_field.queryset = QcSample.objects.filter(pk__in=[s.pk for s in samples])
        for criterion in self.criteria:
            self.add_row(criterion, analyst=analyst)

    def rows(self) -> list[ResultRow]:
        return [self.row(c) for c in self.criteria]

    def entries(self) -> list[tuple[SpecCriterion, ResultEntry]]:
        return [(c, self.entry(c)) for c in self.criteria if self.filled(c)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.has_error("sample"):
            # The sheet shows the sample list without a line for its errors: say it at the top of the sheet.
            self.add_error(None, "Choose the QC sample from this batch's list, or leave it empty.")
        if not self.errors and not any(self.filled(c) for c in self.criteria):
            raise forms.ValidationError("Fill in at least one result: a value, or an outcome from the list.")
        return cleaned


class RetestForm(ResultFieldsMixin):
    def __init__(self, *args: Any, criterion: SpecCriterion, analyst: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.criterion = criterion
        self.add_row(criterion, analyst=analyst)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and not self.filled(self.criterion):
            raise forms.ValidationError("Enter the retest's value or outcome.")
        return cleaned


# --- Deviations, sessions, environmental monitoring -------------------------------------------------


class DeviationFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("open", "Open"), ("closed", "Closed"), ("all", "All")], required=False, initial="open"
    )


class ProcessingSessionForm(forms.Form):
    room = forms.CharField(max_length=40, initial="Cleanroom 1")
    cabinet = forms.CharField(label="Cabinet (grade A)", max_length=40)
    started_at = _datetime("Session started at")
    operators = forms.CharField(label="Operators in the room", max_length=200)
    batches = forms.ModelMultipleChoiceField(
        label="Batches processed in this session",
        queryset=Batch.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        batches = self.fields["batches"]
        assert isinstance(batches, forms.ModelMultipleChoiceField)
        batches.queryset = Batch.objects.filter(
            status__in=[BatchStatus.ISOLATED, BatchStatus.IN_CULTURE, BatchStatus.HARVESTED]
        ).order_by("lot_number")


class EmReadingForm(forms.Form):
    grade = forms.ChoiceField(label="Grade of the sampled location", choices=Grade.choices, initial=Grade.A)
    kind = forms.ChoiceField(label="Reading", choices=EmKind.choices)
    location = forms.CharField(max_length=80, help_text="e.g. cabinet work zone, left of the door")
    value = forms.IntegerField(
        label="Count (CFU or particles)", min_value=0, widget=forms.NumberInput(attrs={"inputmode": "numeric"})
    )
