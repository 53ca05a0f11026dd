"""Reads shaped for the samples pages: each page's query count does not grow with its data."""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
import statistics
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from lims.models import Deviation, Label, LabelKind
from lims.selectors import signature_checks_for
from lims.signatures import SignatureCheck, signatures_for
from samples.calculations import Change, change_from_baseline
from samples.models import (
    Analyte,
    Aspirate,
    AssayResult,
    DiseaseActivity,
    EligibilityAnswer,
    EligibilityCriterion,
    FollowUpSample,
    FollowUpVisit,
    ProtocolStatus,
    ProtocolVersion,
    Study,
    Subject,
)
from samples.services import Eligibility, eligibility_evaluate

# --- Labels and deviations of an item ----------------------------------------------------------


def item_label(item: models.Model, kind: str) -> Label | None:
    return (
        Label.objects.filter(content_type=ContentType.objects.get_for_model(item), object_id=item.pk, kind=kind)
        .select_related("created_by")
        .first()
    )


def subject_wristband(subject: Subject) -> Label | None:
    return item_label(subject, LabelKind.WRISTBAND)


def deviations_for(record: models.Model) -> list[Deviation]:
    return list(
        Deviation.objects.filter(
            content_type=ContentType.objects.get_for_model(record), object_id=record.pk
        ).select_related("opened_by")
    )


# --- Studies and protocol parameters ---------------------------------------------------------

# The protocol's numeric parameters as the study page and the revision form show them:
# (group, ((field, label, unit), ...)). A test checks that every numeric parameter appears here.
PARAMETER_GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Eligibility",
        (
            ("age_min_years", "Youngest age at screening", "years"),
            ("age_max_years", "Oldest age at screening", "years"),
        ),
    ),
    (
        "Dose window",
        (
            ("dose_min_million_per_kg", "Lowest dose", "×10⁶ cells/kg"),
            ("dose_max_million_per_kg", "Highest dose", "×10⁶ cells/kg"),
            ("weight_min_kg", "Lowest plausible body weight", "kg"),
            ("weight_max_kg", "Highest plausible body weight", "kg"),
            ("weight_max_age_days", "Body weight measured at most", "days before dosing"),
            ("syringe_resolution_ml", "Syringe resolution", "mL"),
            ("endotoxin_k_eu_per_kg", "Endotoxin limit K", "EU/kg"),
        ),
    ),
    (
        "Culture schedule",
        (
            ("feed_interval_hours", "Feed every", "h"),
            ("observation_interval_hours", "Observe every", "h"),
            ("passage_confluence_percent", "Passage at confluence of", "%"),
            ("passage_limit", "Highest passage", "passages"),
            ("target_culture_days", "Target culture time", "days"),
            ("culture_days_tolerance", "Culture time tolerance, either way", "days"),
            ("p0_density_min_per_cm2", "P0 seeding density, lowest", "cells/cm²"),
            ("p0_density_max_per_cm2", "P0 seeding density, highest", "cells/cm²"),
            ("passage_density_min_per_cm2", "Passage seeding density, lowest", "cells/cm²"),
            ("passage_density_max_per_cm2", "Passage seeding density, highest", "cells/cm²"),
        ),
    ),
    (
        "Aspirate transport limits",
        (
            ("max_hours_collection_to_receipt", "Collection to receipt, at most", "h"),
            ("transport_temp_min_c", "Transport temperature, lowest", "°C"),
            ("transport_temp_max_c", "Transport temperature, highest", "°C"),
        ),
    ),
    (
        "Product storage and transport",
        (
            ("product_shelf_life_hours", "Shelf life from formulation", "h"),
            ("product_storage_min_c", "Storage and transport temperature, lowest", "°C"),
            ("product_storage_max_c", "Storage and transport temperature, highest", "°C"),
            ("product_transport_max_hours", "Issue to ward receipt, at most", "h"),
        ),
    ),
)

# Parameters that are lists in words, shown (not revised from the form) in their group.
TEXT_PARAMETERS: dict[str, tuple[str, str]] = {
    "eligible_sexes": ("Eligibility", "Eligible sexes"),
    "allowed_vessel_types": ("Culture schedule", "Allowed culture vessels"),
}

PARAMETER_LABELS: dict[str, tuple[str, str]] = {
    name: (label, unit) for _, rows in PARAMETER_GROUPS for name, label, unit in rows
}


def quantity(value: object, unit: str = "") -> str:
    """A stored number as people read it: no trailing zeros, thousands grouped, with its unit."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


@dataclass(frozen=True)
class ParameterRow:
    name: str
    label: str
    value: str
    numeric: bool = True


def _listed(text: str) -> str:
    return ", ".join(item.strip() for item in text.split(",") if item.strip())


def protocol_parameters(protocol: ProtocolVersion) -> list[tuple[str, list[ParameterRow]]]:
    groups = []
    for group, rows in PARAMETER_GROUPS:
        shown = [ParameterRow(name, label, quantity(getattr(protocol, name), unit)) for name, label, unit in rows]
        shown += [
            ParameterRow(name, label, _listed(getattr(protocol, name)), numeric=False)
            for name, (in_group, label) in TEXT_PARAMETERS.items()
            if in_group == group
        ]
        groups.append((group, shown))
    return groups


@dataclass(frozen=True)
class ParameterChange:
    label: str
    before: str
    after: str


def protocol_changes(draft: ProtocolVersion, current: ProtocolVersion) -> list[ParameterChange]:
    """What a draft changes against the version in force, for the person who approves it."""
    changes = []
    for name, (label, unit) in PARAMETER_LABELS.items():
        before, after = getattr(current, name), getattr(draft, name)
        if before != after:
            changes.append(ParameterChange(label, quantity(before, unit), quantity(after, unit)))
    for name, (_, label) in TEXT_PARAMETERS.items():
        before, after = getattr(current, name), getattr(draft, name)
        if before != after:
            changes.append(ParameterChange(label, _listed(before), _listed(after)))
    return changes


def protocol_in_force_or_none(study: Study) -> ProtocolVersion | None:
    return study.protocol_versions.filter(status=ProtocolStatus.APPROVED).first()


def protocol_draft_or_none(study: Study) -> ProtocolVersion | None:
    return study.protocol_versions.filter(status=ProtocolStatus.DRAFT).first()


def studies_for_list() -> QuerySet[Study]:
    in_force = ProtocolVersion.objects.filter(study=OuterRef("pk"), status=ProtocolStatus.APPROVED)
    return Study.objects.annotate(
        subject_count=Count("subjects"), version_in_force=Subquery(in_force.values("version")[:1])
    ).order_by("code")


@dataclass(frozen=True)
class VersionRow:
    protocol: ProtocolVersion
    signatures: list[SignatureCheck]


@dataclass(frozen=True)
class StudyPage:
    study: Study
    versions: list[VersionRow]
    in_force: ProtocolVersion | None
    draft: ProtocolVersion | None
    parameters: list[tuple[str, list[ParameterRow]]]
    analytes: list[ResultRow]
    subject_count: int


def study_page(study: Study) -> StudyPage:
    versions = list(
        study.protocol_versions.select_related("created_by")
        .prefetch_related("criteria", "visits", "analytes")
        .order_by("-version")
    )
    checks = signature_checks_for(versions)  # type: ignore[arg-type]
    in_force = next((v for v in versions if v.status == ProtocolStatus.APPROVED), None)
    return StudyPage(
        study=study,
        versions=[VersionRow(v, checks.get(v.pk, [])) for v in versions],
        in_force=in_force,
        draft=next((v for v in versions if v.status == ProtocolStatus.DRAFT), None),
        parameters=protocol_parameters(in_force) if in_force else [],
        analytes=[ResultRow(a, None) for a in in_force.analytes.all()] if in_force else [],
        subject_count=study.subjects.count(),
    )


def protocol_for_approval() -> QuerySet[ProtocolVersion]:
    return ProtocolVersion.objects.select_related("study", "created_by")


# --- Subjects --------------------------------------------------------------------------------


def subjects_for_list(study_code: str | None = None) -> QuerySet[Subject]:
    subjects = Subject.objects.select_related("study", "protocol").order_by("study__code", "sequence")
    if study_code:
        subjects = subjects.filter(study__code=study_code)
    return subjects


def subject_with_checklist() -> QuerySet[Subject]:
    """A subject with what the eligibility evaluation reads, in a fixed number of queries."""
    return Subject.objects.select_related("study", "protocol", "registered_by").prefetch_related(
        Prefetch("eligibility_answers", queryset=EligibilityAnswer.objects.select_related("answered_by")),
        Prefetch("protocol__criteria", queryset=EligibilityCriterion.objects.order_by("position", "pk")),
        Prefetch("protocol__visits", queryset=FollowUpVisit.objects.order_by("month")),
    )


def subject_for_page() -> QuerySet[Subject]:
    samples = FollowUpSample.objects.select_related("visit", "collected_by").prefetch_related(
        Prefetch("results", queryset=AssayResult.objects.select_related("analyte").order_by("analyte__position"))
    )
    return subject_with_checklist().prefetch_related(
        Prefetch("aspirates", queryset=Aspirate.objects.order_by("collected_at")),
        Prefetch("follow_up_samples", queryset=samples),
        Prefetch("disease_activity", queryset=DiseaseActivity.objects.select_related("visit")),
    )


@dataclass(frozen=True)
class ChecklistRow:
    criterion: EligibilityCriterion
    answer: EligibilityAnswer | None


@dataclass(frozen=True)
class VisitRow:
    visit: FollowUpVisit
    sample: FollowUpSample | None
    das28: DiseaseActivity | None

    @property
    def results(self) -> list[ResultRow]:
        return [ResultRow(r.analyte, r) for r in self.sample.results.all()] if self.sample else []


@dataclass(frozen=True)
class SubjectPage:
    subject: Subject
    eligibility: Eligibility
    checklist: list[ChecklistRow]
    signatures: list[SignatureCheck]
    aspirates: list[Aspirate]
    visits: list[VisitRow]
    wristband: Label | None


def checklist_rows(subject: Subject) -> list[ChecklistRow]:
    answers = {a.criterion_id: a for a in subject.eligibility_answers.all()}
    return [ChecklistRow(c, answers.get(c.pk)) for c in subject.protocol.criteria.all()]


def subject_page(subject: Subject) -> SubjectPage:
    """Everything the subject page shows; ``subject`` comes from :func:`subject_for_page`."""
    samples = {s.visit_id: s for s in subject.follow_up_samples.all()}
    das28 = {d.visit_id: d for d in subject.disease_activity.all()}
    return SubjectPage(
        subject=subject,
        eligibility=eligibility_evaluate(subject),
        checklist=checklist_rows(subject),
        signatures=signatures_for(subject),
        aspirates=list(subject.aspirates.all()),
        visits=[VisitRow(v, samples.get(v.pk), das28.get(v.pk)) for v in subject.protocol.visits.all()],
        wristband=subject_wristband(subject),
    )


# --- Aspirates and follow-up samples -----------------------------------------------------------


def aspirate_for_page() -> QuerySet[Aspirate]:
    return Aspirate.objects.select_related("subject", "subject__study", "protocol", "collected_by", "received_by")


def follow_up_sample_for_page() -> QuerySet[FollowUpSample]:
    return FollowUpSample.objects.select_related(
        "subject", "subject__study", "subject__protocol", "visit", "collected_by"
    ).prefetch_related(
        Prefetch("results", queryset=AssayResult.objects.select_related("analyte", "entered_by")),
        Prefetch("subject__protocol__analytes", queryset=Analyte.objects.order_by("position")),
    )


def analyte_range(analyte: Analyte) -> str:
    low, high = analyte.min_value, analyte.max_value
    if low is None and high is None:
        return "—"
    if high is None:
        return f"≥ {quantity(low, analyte.unit)}"
    if low is None:
        return f"≤ {quantity(high, analyte.unit)}"
    return f"{quantity(low)}–{quantity(high, analyte.unit)}"


@dataclass(frozen=True)
class ResultRow:
    analyte: Analyte
    result: AssayResult | None

    @property
    def possible_range(self) -> str:
        return analyte_range(self.analyte)

    @property
    def value(self) -> str:
        return quantity(self.result.value) if self.result else "—"


def sample_result_rows(sample: FollowUpSample) -> list[ResultRow]:
    results = {r.analyte_id: r for r in sample.results.all()}
    return [ResultRow(a, results.get(a.pk)) for a in sample.subject.protocol.analytes.all()]


# --- The primary endpoint ----------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, clamped to the month's last day (31 Aug + 6 → 28 Feb)."""
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    month = month_index + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


MISSING = "—"
VALUE_PLACES = 2  # the analyte's value and the absolute change, e.g. 4.20 % and +2.10 points
PERCENT_PLACES = 1  # the relative change, as change_from_baseline rounds it


def format_number(value: Decimal | None, places: int, *, signed: bool = False, missing: str = MISSING) -> str:
    """One formatter for the endpoint page and its CSV, so both always show the same numbers."""
    if value is None:
        return missing
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0.00"
    return f"{rounded:+f}" if signed and rounded != 0 else f"{rounded:f}"


def format_flag(value: bool | None, *, missing: str = MISSING) -> str:
    return missing if value is None else ("yes" if value else "no")


def format_date(value: dt.date | None, *, missing: str = MISSING) -> str:
    return missing if value is None else value.isoformat()


@dataclass(frozen=True)
class VisitValue:
    """One subject's primary analyte at one visit; the date is the sample's collection date (site zone)."""

    date: dt.date | None = None
    value: Decimal | None = None
    in_window: bool | None = None
    das28: DiseaseActivity | None = None


@dataclass(frozen=True)
class Cell:
    text: str
    flag: bool | None = None  # an in-window cell, shown as a status word


ENDPOINT_CSV_COLUMNS = (
    "subject",
    "baseline_date",
    "baseline_treg_percent",
    "month6_date",
    "month6_treg_percent",
    "change_points",
    "change_percent",
    "baseline_in_window",
    "month6_in_window",
)


@dataclass(frozen=True)
class EndpointRow:
    subject: Subject
    baseline: VisitValue
    endpoint: VisitValue
    endpoint_target: dt.date | None
    change: Change | None

    def cells(self, *, missing: str = MISSING) -> list[Cell]:
        """The row in the order of ENDPOINT_CSV_COLUMNS; the page and the CSV both print these."""
        change = self.change
        return [
            Cell(self.subject.code),
            Cell(format_date(self.baseline.date, missing=missing)),
            Cell(format_number(self.baseline.value, VALUE_PLACES, missing=missing)),
            Cell(format_date(self.endpoint.date, missing=missing)),
            Cell(format_number(self.endpoint.value, VALUE_PLACES, missing=missing)),
            Cell(format_number(change.absolute if change else None, VALUE_PLACES, signed=True, missing=missing)),
            Cell(
                format_number(change.relative_percent if change else None, PERCENT_PLACES, signed=True, missing=missing)
            ),
            Cell(format_flag(self.baseline.in_window, missing=missing), self.baseline.in_window),
            Cell(format_flag(self.endpoint.in_window, missing=missing), self.endpoint.in_window),
        ]


@dataclass(frozen=True)
class Summary:
    """n, mean, median and SD of one change over the subjects that have it."""

    n: int
    mean: Decimal | None
    median: Decimal | None
    sd: Decimal | None

    @classmethod
    def of(cls, values: list[Decimal]) -> Summary:
        return cls(
            n=len(values),
            mean=statistics.mean(values) if values else None,
            median=statistics.median(values) if values else None,
            sd=statistics.stdev(values) if len(values) >= 2 else None,
        )

    def formatted(self, places: int) -> dict[str, str]:
        return {
            "n": str(self.n),
            "mean": format_number(self.mean, places, signed=True),
            "median": format_number(self.median, places, signed=True),
            "sd": format_number(self.sd, places),
        }


@dataclass(frozen=True)
class EndpointReport:
    study: Study
    analyte_name: str
    unit: str
    baseline_name: str
    endpoint_name: str
    window_days: int | None
    rows: list[EndpointRow]
    absolute: Summary
    relative: Summary

    def table(self, *, missing: str = MISSING) -> list[list[Cell]]:
        return [row.cells(missing=missing) for row in self.rows]


def _endpoint_subjects(study: Study) -> QuerySet[Subject]:
    samples = FollowUpSample.objects.select_related("visit").prefetch_related(
        Prefetch("results", queryset=AssayResult.objects.select_related("analyte"))
    )
    return (
        study.subjects.select_related("protocol")
        .prefetch_related(
            "protocol__visits",
            "protocol__analytes",
            Prefetch("follow_up_samples", queryset=samples),
            Prefetch("disease_activity", queryset=DiseaseActivity.objects.select_related("visit")),
        )
        .order_by("sequence")
    )


def _visit_value(sample: FollowUpSample | None, analyte: Analyte | None) -> tuple[dt.date | None, Decimal | None]:
    if sample is None:
        return None, None
    value = next((r.value for r in sample.results.all() if analyte and r.analyte_id == analyte.pk), None)
    return timezone.localdate(sample.collected_at), value


def _endpoint_row(subject: Subject) -> EndpointRow | None:
    visits = list(subject.protocol.visits.all())
    baseline_visit = next((v for v in visits if v.month == 0), None)
    endpoint_visit = next((v for v in visits if v.primary_endpoint), None)
    analyte = next((a for a in subject.protocol.analytes.all() if a.primary), None)
    if baseline_visit is None or endpoint_visit is None:
        return None
    samples = {s.visit_id: s for s in subject.follow_up_samples.all()}
    das28 = {d.visit_id: d for d in subject.disease_activity.all()}
    base_sample, end_sample = samples.get(baseline_visit.pk), samples.get(endpoint_visit.pk)
    if base_sample is None and end_sample is None:
        return None
    base_date, base_value = _visit_value(base_sample, analyte)
    end_date, end_value = _visit_value(end_sample, analyte)
    target = add_months(base_date, endpoint_visit.month - baseline_visit.month) if base_date else None
    end_in_window = None
    if target is not None and end_date is not None:
        end_in_window = abs((end_date - target).days) <= endpoint_visit.window_days
    change = None
    if base_value is not None and end_value is not None:
        change = change_from_baseline(base_value, end_value)
    return EndpointRow(
        subject=subject,
        baseline=VisitValue(base_date, base_value, True if base_date else None, das28.get(baseline_visit.pk)),
        endpoint=VisitValue(end_date, end_value, end_in_window, das28.get(endpoint_visit.pk)),
        endpoint_target=target,
        change=change,
    )


def study_endpoint(study: Study) -> EndpointReport:
    """The primary endpoint per subject and for the study: the primary analyte (Treg %) at the
    baseline visit (month 0) and at the primary-endpoint visit (month 6), and its change.

    Windows are anchored on the baseline sample's collection date, taken as month 0: the
    protocol counts months after infusion, but the infusion date does not exist in the data
    model yet. When it does, the anchor should become the infusion date. The endpoint target
    is the anchor plus the visit's months in calendar months (the day clamped to the month's
    end); the sample is inside its window when it is at most ``window_days`` from the target.
    A baseline sample is inside its window by definition. Subjects without a sample at either
    visit are left out; the summary counts only subjects that have both values (the relative
    change also needs a baseline above 0).
    """
    rows = [row for subject in _endpoint_subjects(study) if (row := _endpoint_row(subject)) is not None]
    reference = protocol_in_force_or_none(study) or study.protocol_versions.order_by("-version").first()
    analyte = reference.analytes.filter(primary=True).first() if reference else None
    visits = list(reference.visits.all()) if reference else []
    baseline = next((v for v in visits if v.month == 0), None)
    endpoint = next((v for v in visits if v.primary_endpoint), None)
    changes = [r.change for r in rows if r.change is not None]
    return EndpointReport(
        study=study,
        analyte_name=analyte.name if analyte else "Primary analyte",
        unit=analyte.unit if analyte else "",
        baseline_name=baseline.name if baseline else "Baseline",
        endpoint_name=endpoint.name if endpoint else "Primary endpoint",
        window_days=endpoint.window_days if endpoint else None,
        rows=rows,
        absolute=Summary.of([c.absolute for c in changes]),
        relative=Summary.of([c.relative_percent for c in changes if c.relative_percent is not None]),
    )


def endpoint_csv(report: EndpointReport) -> str:
    """The page's table as CSV: the same cells, with missing values left empty instead of "—"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ENDPOINT_CSV_COLUMNS)
    writer.writerows([cell.text for cell in row] for row in report.table(missing=""))
    return buffer.getvalue()
