"""One subject's story, from screening through the aspirate, culture, release and infusion to the
last follow-up, as the events a reviewer reads (design: "readable as a timeline per subject").

Each source is read once, whatever the length of the history, so the page costs the same number
of queries for a subject screened yesterday and one followed for a year. Hard stops, rejections,
deviations, out-of-specification results and transport flags are marked as alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, CharField, DateTimeField, F, IntegerField, Model, Q, Value, When
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from lims.models import CustodyEvent, Deviation, LabelKind
from manufacturing.models import (
    Batch,
    BatchStatus,
    BedsideCheck,
    CultureEvent,
    DoseCalculation,
    EventKind,
    FinalProduct,
    Flask,
    Harvest,
    Infusion,
    ProductStatus,
    QcFlag,
    QcResult,
    ResultStatus,
)
from samples.models import Aspirate, AspirateStatus, FollowUpSample, Subject, SubjectStatus

PHASES = ("Clinic", "Aspirate", "Culture", "Release", "Product", "Bedside", "Follow-up")

# Statuses worth a line of their own; the others are told by a hand-over or another event.
TOLD_BY_STATUS: dict[str, tuple[str, set[str]]] = {
    "subject": ("Clinic", set(SubjectStatus.values)),
    "aspirate": (
        "Aspirate",
        {AspirateStatus.ACCEPTED, AspirateStatus.ACCEPTED_WITH_DEVIATION, AspirateStatus.REJECTED},
    ),
    "batch": ("Culture", set(BatchStatus.values)),
    "finalproduct": (
        "Product",
        {ProductStatus.FORMULATED, ProductStatus.INFUSED, ProductStatus.RETURNED, ProductStatus.DESTROYED},
    ),
}
RELEASE_STATUSES = {
    BatchStatus.RELEASE_TESTING,
    BatchStatus.RELEASED,
    BatchStatus.CONDITIONALLY_RELEASED,
    BatchStatus.REJECTED,
}
ALERT_STATUSES = {
    AspirateStatus.REJECTED,
    AspirateStatus.ACCEPTED_WITH_DEVIATION,
    BatchStatus.REJECTED,
    BatchStatus.TERMINATED,
    ProductStatus.RETURNED,
    ProductStatus.DESTROYED,
    SubjectStatus.INELIGIBLE,
    SubjectStatus.WITHDRAWN,
}
# When the record itself says when a status was reached (a back-dated receipt, a seeding entered
# after the fact), that time is the event's, not the moment the entry was saved.
WHEN_FIELD: dict[str, dict[str, str]] = {
    "subject": {SubjectStatus.SCREENING: "registered_at"},
    "aspirate": {
        AspirateStatus.ACCEPTED: "received_at",
        AspirateStatus.ACCEPTED_WITH_DEVIATION: "received_at",
        AspirateStatus.REJECTED: "received_at",
    },
    "batch": {
        BatchStatus.ISOLATED: "started_at",
        BatchStatus.IN_CULTURE: "seeded_at",
        BatchStatus.RELEASE_TESTING: "testing_started_at",
        BatchStatus.CONDITIONALLY_RELEASED: "decided_at",
        BatchStatus.RELEASED: "decided_at",
        BatchStatus.REJECTED: "decided_at",
    },
    "finalproduct": {ProductStatus.FORMULATED: "formulated_at"},
}
DEVIATION_PHASE = {"aspirate": "Aspirate", "batch": "Culture", "flask": "Culture", "qcresult": "Release"}


@dataclass(frozen=True)
class TimelineEvent:
    at: dt.datetime
    phase: str
    what: str
    detail: str = ""
    who: str = ""
    url: str = ""
    alert: bool = False


def _name(user: Any) -> str:
    return user.printed_name if user is not None else ""


def _day(value: dt.date) -> dt.datetime:
    """A date-only record (DAS28) at noon local time, so it sorts within its day."""
    return timezone.make_aware(dt.datetime.combine(value, dt.time(12)))


def _printed_name(first: str | None, last: str | None, username: str | None) -> str:
    """``User.printed_name`` from the joined columns of a history row ("" when nobody is recorded)."""
    if username is None:
        return ""
    return f"{first} {last}".strip() or username


def _status_changes(records: Iterable[Model], harvested: dict[int, dt.datetime]) -> Iterator[TimelineEvent]:
    """The status changes in each record's history, with who made them and why.

    The history tables of every kind of record are read in one UNION ALL, in the order the
    records came (the subject, its aspirates, batches and products) and by record within each.
    """
    by_model: dict[type[Model], list[Model]] = {}
    for record in records:
        by_model.setdefault(type(record), []).append(record)
    parts = []
    for order, (model, items) in enumerate(by_model.items()):
        name = model._meta.model_name or ""
        when = Case(
            *(When(status=status, then=F(field)) for status, field in WHEN_FIELD[name].items()),
            default=Value(None),
            output_field=DateTimeField(),
        )
        parts.append(
            model.history.filter(id__in=[item.pk for item in items])  # type: ignore[attr-defined]
            .annotate(record_kind=Value(order), status_at=when)
            .values_list(*_HISTORY_COLUMNS)
            .order_by()
        )
    if not parts:
        return
    models_in_order = list(by_model)
    urls = {(type(item), item.pk): item.get_absolute_url() for item in records}  # type: ignore[attr-defined]
    names = {(type(item), item.pk): str(item) for item in records}
    rows = parts[0].union(*parts[1:], all=True).order_by("record_kind", "id", "history_date", "history_id")
    previous: dict[tuple[int, int], str] = {}
    for order, pk, _history_id, history_date, reason, first, last, username, status, status_at in rows:
        model = models_in_order[order]
        name = model._meta.model_name or ""
        phase, told = TOLD_BY_STATUS[name]
        before = previous.get((order, pk))
        previous[(order, pk)] = status
        if status == before or status not in told:
            continue
        label = str(dict(model._meta.get_field("status").flatchoices).get(status, status))
        in_release = name == "batch" and status in RELEASE_STATUSES
        at = status_at or history_date
        if name == "batch" and status == BatchStatus.HARVESTED:
            at = harvested.get(pk, at)
        yield TimelineEvent(
            at=at,
            phase="Release" if in_release else phase,
            what=f"{names[(model, pk)]}: {label}",
            detail=reason or "",
            who=_printed_name(first, last, username),
            url=urls[(model, pk)],
            alert=status in ALERT_STATUSES,
        )


_HISTORY_COLUMNS = (
    "record_kind",
    "id",
    "history_id",
    "history_date",
    "history_change_reason",
    "history_user__first_name",
    "history_user__last_name",
    "history_user__username",
    "status",
    "status_at",
)


# Four short sources (culture events, QC results, deviations, follow-up samples) are read in one
# UNION ALL with the same columns, and each source's rows are put back in the order its own query
# had; a row is (source, pk, at, five texts, a sort number, the person's first, last and user name).
NotedRow = tuple[int, int, dt.datetime, str, str, str, str, str, int | None, str | None, str | None, str | None]
CULTURE, QC, DEVIATION, FOLLOW_UP = range(4)


def _texts(*columns: str) -> dict[str, Any]:
    """Five text columns, padded with typed NULLs (PostgreSQL types an untyped one as text), so that every
    source of the union has the same shape."""
    padded = [*columns, *[None] * (5 - len(columns))]
    return {f"row_text{n}": F(column) if column else Cast(Value(None), CharField()) for n, column in enumerate(padded)}


def _noted_rows(subject: Subject) -> dict[int, list[NotedRow]]:
    def part(source: int, queryset: Any, at: str, user: str, texts: dict[str, Any], sort: Any = None) -> Any:
        return (
            queryset.annotate(
                row_source=Value(source),
                row_at=F(at),
                **texts,
                row_sort=sort if sort is not None else Cast(Value(None), IntegerField()),
                row_first=F(f"{user}__first_name"),
                row_last=F(f"{user}__last_name"),
                row_username=F(f"{user}__username"),
            )
            .values_list(
                "row_source",
                "pk",
                "row_at",
                *(f"row_text{n}" for n in range(5)),
                "row_sort",
                "row_first",
                "row_last",
                "row_username",
            )
            .order_by()
        )

    culture = CultureEvent.objects.filter(
        flask__batch__subject=subject, kind__in=[EventKind.PASSAGE, EventKind.HARVEST, EventKind.DISCARD]
    )
    results = QcResult.objects.filter(batch__subject=subject, flag__in=[QcFlag.OOS, QcFlag.NOT_EVALUABLE])
    rows = part(CULTURE, culture, "occurred_at", "recorded_by", _texts("flask__code", "kind", "note")).union(
        part(
            QC,
            results,
            "entered_at",
            "entered_by",
            _texts("criterion__attribute", "flag", "flag_explanation", "batch__lot_number", "status"),
        ),
        part(
            DEVIATION,
            Deviation.objects.filter(subject_code=subject.code),
            "opened_at",
            "opened_by",
            _texts("code", "source", "description", "content_type__model"),
        ),
        part(
            FOLLOW_UP,
            FollowUpSample.objects.filter(subject=subject),
            "collected_at",
            "collected_by",
            _texts("code", "visit__name"),
            sort=F("visit__month"),
        ),
        all=True,
    )
    found: dict[int, list[NotedRow]] = {CULTURE: [], QC: [], DEVIATION: [], FOLLOW_UP: []}
    for row in rows:
        found[row[0]].append(row)
    # The orders of the queries these rows used to come from, one each.
    found[CULTURE].sort(key=lambda r: (r[2], r[1]))
    found[QC].sort(key=lambda r: r[2])
    found[DEVIATION].sort(key=lambda r: r[2], reverse=True)  # Deviation's default ordering
    found[FOLLOW_UP].sort(key=lambda r: r[8] if r[8] is not None else 0)  # FollowUpSample's: the visit's month
    return found


def _display(model: type[Model], field: str, value: str) -> str:
    """``get_<field>_display()`` for a value read without its model instance."""
    return str(dict(model._meta.get_field(field).flatchoices).get(value, value))  # type: ignore[union-attr]


def _culture(rows: list[NotedRow]) -> Iterator[TimelineEvent]:
    for _, _pk, at, flask_code, kind, note, _, _, _, first, last, username in rows:
        yield TimelineEvent(
            at=at,
            phase="Culture",
            what=f"Flask {flask_code} {_display(CultureEvent, 'kind', kind).lower()}",
            detail=note,
            who=_printed_name(first, last, username),
            url=Flask(code=flask_code).get_absolute_url(),
            alert=kind == EventKind.DISCARD,
        )


def _release(results: list[NotedRow], deviations: list[NotedRow]) -> Iterator[TimelineEvent]:
    for _, _pk, at, attribute, flag, explanation, lot_number, status, _, first, last, username in results:
        invalidated = " (invalidated by QA)" if status == ResultStatus.INVALIDATED else ""
        yield TimelineEvent(
            at=at,
            phase="Release",
            what=f"{attribute} {_display(QcResult, 'flag', flag).lower()}{invalidated}",
            detail=explanation,
            who=_printed_name(first, last, username),
            url=Batch(lot_number=lot_number).get_absolute_url(),
            alert=True,
        )
    for _, _pk, at, code, source, description, model, _, _, first, last, username in deviations:
        yield TimelineEvent(
            at=at,
            phase=DEVIATION_PHASE.get(model, "Release"),
            what=f"Deviation {code} opened ({_display(Deviation, 'source', source).lower()})",
            detail=description,
            who=_printed_name(first, last, username),
            alert=True,
        )


def _custody(subject: Subject) -> Iterator[TimelineEvent]:
    handovers = CustodyEvent.objects.filter(
        label__subject_code=subject.code, label__kind__in=[LabelKind.ASPIRATE, LabelKind.PRODUCT]
    ).select_related("label", "recorded_by")
    for event in handovers:
        yield TimelineEvent(
            at=event.occurred_at,
            phase="Aspirate" if event.label.kind == LabelKind.ASPIRATE else "Product",
            what=f"{event.label.code} handed over: {event.handed_over_by} → {event.received_by}",
            detail=f"{event.location}, {event.temperature_c} °C, {event.get_container_condition_display().lower()}"
            + (f" — {event.note}" if event.note else ""),
            who=_name(event.recorded_by),
            url=reverse("label-detail", args=[event.label.code]),
            alert=bool(event.note),
        )


def _product(subject: Subject) -> Iterator[TimelineEvent]:
    doses = DoseCalculation.objects.filter(subject=subject).select_related("product", "calculated_by", "verified_by")
    for dose in doses:
        url = dose.product.get_absolute_url()
        yield TimelineEvent(
            at=dose.calculated_at,
            phase="Product",
            what=f"Dose calculated: {dose.achieved_million_per_kg} ×10⁶ cells/kg, draw {dose.volume_ml} mL",
            detail=f"{dose.weight_kg} kg, target {dose.target_million_per_kg} ×10⁶ cells/kg",
            who=_name(dose.calculated_by),
            url=url,
        )
        if dose.verified_at:
            yield TimelineEvent(
                at=dose.verified_at,
                phase="Product",
                what="Dose verified by a second clinician",
                who=_name(dose.verified_by),
                url=url,
            )
    checks = BedsideCheck.objects.filter(Q(subject=subject) | Q(product__batch__subject=subject))
    for check in checks.select_related("first_checker", "second_checker", "product"):
        second = f" and {_name(check.second_checker)}" if check.second_checker else ""
        yield TimelineEvent(
            at=check.checked_at,
            phase="Bedside",
            what="Bedside check passed" if check.passed else "HARD STOP at the bedside",
            detail=check.findings.replace("\n", "; "),
            who=_name(check.first_checker) + second,
            url=check.product.get_absolute_url() if check.product else "",
            alert=not check.passed,
        )
    infusions = Infusion.objects.filter(subject=subject).select_related("product", "administered_by", "witnessed_by")
    for infusion in infusions:
        who = f"{_name(infusion.administered_by)}, witnessed by {_name(infusion.witnessed_by)}"
        url = reverse("product:infusion", args=[infusion.pk])
        if infusion.started_at:
            yield TimelineEvent(
                at=infusion.started_at,
                phase="Bedside",
                what=f"Infusion of {infusion.product.code} started",
                who=who,
                url=url,
            )
        if infusion.ended_at:
            reaction = infusion.adverse_reaction
            yield TimelineEvent(
                at=infusion.ended_at,
                phase="Bedside",
                what=f"Infusion ended: {infusion.volume_infused_ml} mL infused",
                detail=f"adverse reaction grade {infusion.adverse_grade}: {reaction}" if reaction else "",
                who=who,
                url=url,
                alert=bool(reaction),
            )


def _follow_up(subject: Subject, samples: list[NotedRow]) -> Iterator[TimelineEvent]:
    for _, _pk, at, code, visit, _, _, _, _, first, last, username in samples:
        yield TimelineEvent(
            at=at,
            phase="Follow-up",
            what=f"{visit} blood sample {code} collected",
            who=_printed_name(first, last, username),
            url=FollowUpSample(code=code).get_absolute_url(),
        )
    for das28 in subject.disease_activity.select_related("visit"):
        yield TimelineEvent(
            at=_day(das28.assessed_on),
            phase="Follow-up",
            what=f"{das28.visit.name} DAS28-ESR {das28.das28_esr} ({das28.get_category_display().lower()})",
            url=subject.get_absolute_url(),
        )


def subject_timeline(subject: Subject) -> list[TimelineEvent]:
    """Every event of one subject, oldest first."""
    aspirates = list(Aspirate.objects.filter(subject=subject).select_related("collected_by"))
    # A batch's harvest and final product are one-to-one: read with the batches, not on their own.
    batches = list(subject.batches.select_related("harvest", "product"))
    products: list[FinalProduct] = [p for p in (getattr(b, "product", None) for b in batches) if p is not None]
    harvests: list[Harvest] = [h for h in (getattr(b, "harvest", None) for b in batches) if h is not None]
    records: list[Model] = [subject, *aspirates, *batches, *products]
    noted = _noted_rows(subject)
    events = [
        *(
            TimelineEvent(
                at=a.collected_at,
                phase="Aspirate",
                what=f"Aspirate {a.code} collected",
                detail=f"{a.volume_ml} mL from the {a.site}, {a.anticoagulant}",
                who=_name(a.collected_by),
                url=a.get_absolute_url(),
            )
            for a in aspirates
        ),
        *_status_changes(records, {h.batch_id: h.harvested_at for h in harvests}),
        *_culture(noted[CULTURE]),
        *_release(noted[QC], noted[DEVIATION]),
        *_custody(subject),
        *_product(subject),
        *_follow_up(subject, noted[FOLLOW_UP]),
    ]
    return sorted(events, key=lambda e: (e.at, PHASES.index(e.phase)))
