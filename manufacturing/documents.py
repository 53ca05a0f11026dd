"""QA's view of one batch: the release dossier, the Certificate of Analysis and the batch record.

:func:`batch_dossier` gathers everything a reviewer reads before signing — every criterion of the
frozen specification with its results and stored flags, deviations, environmental monitoring,
custody, reagent lots, the changes made after first entry, the blockers and who made the batch —
in a fixed number of queries whatever the batch's size. The admin review page and both PDFs are
drawn from it, so the page QA signs from and the documents that leave the unit say the same thing.

The PDFs are deterministic: they contain no "printed now" time, every time is UTC, lists are in a
stable order, and the PDF file identifier is a hash of the document's own content, so the same
records always give byte-identical files and a changed record gives a different one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Prefetch, Q
from django.template.loader import render_to_string

from lims.audit import FieldChange
from lims.models import CustodyEvent, Deviation, DeviationStatus, Label
from lims.selectors import CustodyRow, signature_checks_for
from lims.signatures import SignatureCheck, signatures_for
from manufacturing.models import (
    Batch,
    BatchStatus,
    Comparator,
    CultureEvent,
    DeviationClosure,
    EmReading,
    EventKind,
    FinalProduct,
    Flask,
    Harvest,
    ProcessingSession,
    QcFlag,
    QcResult,
    QcSample,
    ReagentLot,
    ResultStatus,
    SpecCriterion,
)
from manufacturing.services.release import (
    CriterionStatus,
    deviations_for_batch,
    manufacturing_actors,
    release_blockers,
)
from samples.models import Aspirate

# The stored flag in words: a flag is never shown by colour alone.
FLAG_WORDS: dict[str, str] = {
    QcFlag.PASS: "PASS",
    QcFlag.OOS: "OUT OF SPECIFICATION",
    QcFlag.NOT_EVALUABLE: "CANNOT BE EVALUATED",
    QcFlag.AT_DOSE: "AT DOSE TIME",
}
CHANGED_AFTER_SIGNING = "The record changed after it was signed"
AUTOLOGOUS = "FOR AUTOLOGOUS USE ONLY"

_SYMBOLS: dict[str, str] = {Comparator.AT_LEAST: "≥", Comparator.AT_MOST: "≤", Comparator.EQUALS: "="}
# Fields whose change is a step of the workflow (a status moving on), not a value being corrected.
_WORKFLOW_FIELDS = {
    "status",
    "status_reason",
    "decided_at",
    "needs_rereview",
    "specification",
    "testing_started_at",
    "seeded_at",
    "investigation",
}


def flag_word(flag: str) -> str:
    return FLAG_WORDS.get(flag, flag.upper())


def limit_text(criterion: SpecCriterion) -> str:
    """The criterion's limit as printed: ``≥ 95 %``, ``no growth``, ``≤ the protocol's passage limit (P4)``."""
    if criterion.comparator in _SYMBOLS and criterion.limit is not None:
        return f"{_SYMBOLS[criterion.comparator]} {criterion.limit.normalize():f} {criterion.unit}".strip()
    text = str(criterion.get_comparator_display())
    if criterion.comparator == Comparator.PASSAGE and criterion.limit is not None:
        text += f" (P{criterion.limit.normalize():f})"
    return text


# --- What the dossier holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultLine:
    """One result as a reviewer reads it: numbered within its criterion, flag and status in words."""

    result: QcResult
    number: int
    retest_of: int | None
    invalidation: list[SignatureCheck]

    @property
    def flag_word(self) -> str:
        return flag_word(self.result.flag)

    @property
    def oos(self) -> bool:
        return self.result.flag in (QcFlag.OOS, QcFlag.NOT_EVALUABLE)

    @property
    def valid(self) -> bool:
        return self.result.status == ResultStatus.VALID

    @property
    def status_word(self) -> str:
        words = "valid" if self.valid else "INVALIDATED by QA"
        if self.retest_of is not None:
            words += f", retest of result {self.retest_of}"
        return words


@dataclass(frozen=True)
class CriterionLine:
    criterion: SpecCriterion
    limit: str
    results: list[ResultLine]
    blocking: str

    @property
    def at_dose(self) -> bool:
        return self.criterion.comparator == Comparator.DOSE

    @property
    def missing(self) -> bool:
        return not self.at_dose and not any(line.valid for line in self.results)


@dataclass(frozen=True)
class DeviationLine:
    deviation: Deviation
    raised_on: str
    closure: DeviationClosure | None
    signatures: list[SignatureCheck]

    @property
    def open(self) -> bool:
        return self.deviation.status == DeviationStatus.OPEN


@dataclass(frozen=True)
class CustodyBlock:
    label: Label
    item: str
    rows: list[CustodyRow]


@dataclass(frozen=True)
class RecordChange:
    """A history row of type "~": a record changed after it was first entered."""

    record: str
    when: datetime
    who: str
    reason: str
    changes: tuple[FieldChange, ...]
    field_names: tuple[str, ...] = ()

    @property
    def status_step(self) -> bool:
        """Only workflow fields moved on (a status step); anything else is a value changed after entry."""
        return bool(self.field_names) and all(name in _WORKFLOW_FIELDS for name in self.field_names)


@dataclass(frozen=True)
class Step:
    """One line of the batch record: what was done, to which item, when and by whom."""

    when: datetime
    what: str
    item: str
    details: str
    lots: str
    who: str
    late_reason: str = ""


@dataclass
class BatchDossier:
    batch: Batch
    criteria: list[CriterionLine]
    deviations: list[DeviationLine]
    sessions: list[ProcessingSession]
    custody: list[CustodyBlock]
    lots: list[ReagentLot]
    changes: list[RecordChange]
    blockers: list[str]
    conditional_blockers: list[str] | None
    actors: list[Any]
    signatures: list[SignatureCheck]
    specification_signatures: list[SignatureCheck]
    qc_samples: list[QcSample]
    events: list[CultureEvent] = field(default_factory=list)

    @property
    def harvest(self) -> Harvest | None:
        return getattr(self.batch, "harvest", None)

    @property
    def signed_record_changed(self) -> bool:
        return any(not check.valid for check in self.signatures)

    @property
    def result_count(self) -> int:
        return sum(len(line.results) for line in self.criteria)

    @property
    def oos_count(self) -> int:
        return sum(1 for line in self.criteria for r in line.results if r.result.flag == QcFlag.OOS)

    @property
    def excursion_count(self) -> int:
        return sum(1 for s in self.sessions for r in s.readings.all() if r.excursion)

    @property
    def open_deviations(self) -> list[DeviationLine]:
        return [d for d in self.deviations if d.open]

    @property
    def value_changes(self) -> list[RecordChange]:
        return [c for c in self.changes if not c.status_step]

    @property
    def released(self) -> bool:
        return self.batch.status in (BatchStatus.RELEASED, BatchStatus.CONDITIONALLY_RELEASED)

    @property
    def data_as_of(self) -> datetime | None:
        """The latest time the documents' content carries: stable for the same records."""
        times = [self.batch.started_at, self.batch.testing_started_at, self.batch.decided_at]
        times += [check.signature.signed_at for check in self.signatures]
        times += [c.when for c in self.changes]
        times += [r.result.entered_at for line in self.criteria for r in line.results]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def steps(self) -> list[Step]:
        return batch_steps(self)


# --- Building it -----------------------------------------------------------------------------------


def _batch_for_dossier(batch: Batch) -> Batch:
    return Batch.objects.select_related(
        "subject",
        "subject__study",
        "protocol",
        "aspirate",
        "started_by",
        "specification",
        "specification__study",
        "specification__created_by",
        "harvest",
        "harvest__recorded_by",
        "product",
    ).get(pk=batch.pk)


def _criterion_lines(batch: Batch, results: list[QcResult]) -> list[CriterionLine]:
    """Every criterion of the frozen specification with its results; "blocking" is the service's own rule."""
    if batch.specification is None:
        return []
    invalidations = signature_checks_for(results)  # type: ignore[arg-type]
    by_criterion: dict[int, list[QcResult]] = defaultdict(list)
    for result in results:
        by_criterion[result.criterion_id].append(result)
    lines = []
    for criterion in batch.specification.criteria.order_by("position"):
        numbers: dict[int, int] = {}
        result_lines = []
        for index, result in enumerate(by_criterion[criterion.pk], start=1):
            numbers[result.pk] = index
            result_lines.append(
                ResultLine(
                    result=result,
                    number=index,
                    retest_of=numbers.get(result.retest_of_id) if result.retest_of_id else None,
                    invalidation=invalidations.get(result.pk, []),
                )
            )
        status = CriterionStatus(criterion, by_criterion[criterion.pk])
        lines.append(CriterionLine(criterion, limit_text(criterion), result_lines, status.blocking))
    return lines


def _deviation_lines(batch: Batch, flasks: list[Flask], results: list[QcResult]) -> list[DeviationLine]:
    deviations = deviations_for_batch(batch)
    openers = get_user_model().objects.in_bulk({d.opened_by_id for d in deviations})
    for deviation in deviations:
        deviation.opened_by = openers[deviation.opened_by_id]  # one query for all, not one each
    closures = {
        c.deviation_id: c
        for c in DeviationClosure.objects.filter(deviation__in=[d.pk for d in deviations]).select_related(
            "deviation", "closed_by"
        )
    }
    checks = signature_checks_for(list(closures.values()))  # type: ignore[arg-type]
    names: dict[tuple[type[models.Model], int], str] = {(Batch, batch.pk): f"batch {batch.lot_number}"}
    names[(Aspirate, batch.aspirate_id)] = f"aspirate {batch.aspirate.code}"
    names.update({(Flask, f.pk): f"flask {f.code}" for f in flasks})
    names.update({(QcResult, r.pk): f"QC result {r.criterion.attribute}" for r in results})
    lines = []
    for deviation in deviations:
        model = ContentType.objects.get_for_id(deviation.content_type_id).model_class()
        raised_on = names.get((model, deviation.object_id), "") if model else ""  # type: ignore[arg-type]
        closure = closures.get(deviation.pk)
        lines.append(
            DeviationLine(deviation, raised_on, closure, checks.get(closure.pk, []) if closure is not None else [])
        )
    return lines


def _sessions(batch: Batch) -> list[ProcessingSession]:
    readings = EmReading.objects.select_related("recorded_by").order_by("recorded_at", "id")
    return list(
        ProcessingSession.objects.filter(batches=batch)
        .select_related("recorded_by")
        .prefetch_related(Prefetch("readings", queryset=readings))
        .order_by("started_at", "id")
    )


def _custody(batch: Batch, flasks: list[Flask], samples: list[QcSample]) -> list[CustodyBlock]:
    """Custody of the aspirate, the flasks, the QC samples and the product bag, in two queries whatever their number.

    ``lims.selectors.custody_timeline`` reads one label at a time (two queries each); here the
    events of all the batch's labels are read at once and their signatures checked in one query.
    """
    items: dict[tuple[int, int], str] = {}
    wanted = Q(pk__in=[])
    product = getattr(batch, "product", None)
    items_by_model: list[tuple[type[models.Model], list[Any]]] = [
        (Aspirate, [batch.aspirate]),
        (Flask, flasks),
        (QcSample, samples),
        (FinalProduct, [product] if product is not None else []),
    ]
    for model, objects in items_by_model:
        if not objects:
            continue
        content_type = ContentType.objects.get_for_model(model)
        wanted |= Q(content_type=content_type, object_id__in=[o.pk for o in objects])
        items.update({(content_type.pk, o.pk): f"{model._meta.verbose_name} {o.code}" for o in objects})
    labels = list(Label.objects.filter(wanted).order_by("code"))
    events = list(
        CustodyEvent.objects.filter(label__in=labels)
        .select_related("recorded_by", "label")
        .order_by("occurred_at", "id")
    )
    checks = signature_checks_for(events)  # type: ignore[arg-type]
    by_label: dict[int, list[CustodyRow]] = defaultdict(list)
    for event in events:
        by_label[event.label_id].append(CustodyRow(event, checks.get(event.pk, [])))
    return [
        CustodyBlock(label, items.get((label.content_type_id, label.object_id), label.code), by_label[label.pk])
        for label in labels
    ]


def _changes_of(model: type[models.Model], describe: dict[int, str], ids: Iterable[int]) -> list[tuple[str, Any, Any]]:
    """History rows of type "~" of these records, each with the row before it, in two queries."""
    ids = list(ids)
    history = model.history  # type: ignore[attr-defined]
    changed = set(history.filter(id__in=ids, history_type="~").values_list("id", flat=True))
    if not changed:
        return []
    rows = history.filter(id__in=changed).select_related("history_user").order_by("id", "history_date", "history_id")
    found = []
    previous: dict[int, Any] = {}
    for row in rows:
        before = previous.get(row.id)
        if row.history_type == "~" and before is not None:
            found.append((describe[row.id], row, before))
        previous[row.id] = row
    return found


def _field(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:  # a field removed since: its history is still shown, by name
        return None


def _display(model_field: Any, value: object) -> str:
    """A history value as a reviewer reads it: choices by their label, times in UTC, references by id."""
    if value is None or value == "":
        return ""
    if model_field is not None and model_field.choices:
        return f"{dict(model_field.flatchoices).get(value, value)}"
    if model_field is not None and model_field.is_relation:
        return f"#{value}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def _field_change(model: type[models.Model], change: Any) -> FieldChange:
    model_field = _field(model, change.field)
    label = str(model_field.verbose_name) if model_field is not None else change.field
    return FieldChange(label, _display(model_field, change.old), _display(model_field, change.new))


def _record_changes(
    batch: Batch, harvest: Harvest | None, flasks: list[Flask], events: list[CultureEvent], results: list[QcResult]
) -> list[RecordChange]:
    sources: list[tuple[type[models.Model], dict[int, str]]] = [
        (Batch, {batch.pk: f"Batch {batch.lot_number}"}),
        (Flask, {f.pk: f"Flask {f.code}" for f in flasks}),
        (CultureEvent, {e.pk: f"{e.get_kind_display()} of {e.flask.code}" for e in events}),
        (QcResult, {r.pk: f"QC result {r.criterion.attribute} ({r.display_value})" for r in results}),
    ]
    if harvest is not None:
        sources.append((Harvest, {harvest.pk: f"Harvest of {batch.lot_number}"}))
    changes = []
    for model, describe in sources:
        for record, row, before in _changes_of(model, describe, describe):
            delta = row.diff_against(before, foreign_keys_are_objs=False)
            changes.append(
                RecordChange(
                    record=record,
                    when=row.history_date,
                    who=row.history_user.printed_name if row.history_user else "(unknown)",
                    reason=row.history_change_reason or "",
                    changes=tuple(_field_change(model, c) for c in delta.changes),
                    field_names=tuple(c.field for c in delta.changes),
                )
            )
    return sorted(changes, key=lambda c: (c.when, c.record))


def batch_dossier(batch: Batch) -> BatchDossier:
    """Everything QA reviews before deciding on a batch, in a fixed number of queries."""
    batch = _batch_for_dossier(batch)
    flasks = list(batch.flasks.order_by("passage_number", "code"))
    flask_by_id = {f.pk: f for f in flasks}
    events = list(
        CultureEvent.objects.filter(flask__batch=batch)
        .select_related("recorded_by")
        .prefetch_related("reagent_uses__lot__reagent")
        .order_by("occurred_at", "id")
    )
    for event in events:
        event.flask = flask_by_id[event.flask_id]  # already loaded: no query per event
    results = list(
        batch.qc_results.select_related("criterion", "entered_by", "investigation", "sample").order_by(
            "entered_at", "id"
        )
    )
    samples = list(batch.qc_samples.select_related("taken_by").order_by("taken_at", "id"))
    harvest = getattr(batch, "harvest", None)
    allows_conditional = batch.specification is not None and batch.specification.allows_conditional_release
    user_model = get_user_model()
    return BatchDossier(
        batch=batch,
        criteria=_criterion_lines(batch, results),
        deviations=_deviation_lines(batch, flasks, results),
        sessions=_sessions(batch),
        custody=_custody(batch, flasks, samples),
        lots=list(
            ReagentLot.objects.filter(uses__event__flask__batch=batch)
            .select_related("reagent")
            .distinct()
            .order_by("reagent__name", "code")
        ),
        changes=_record_changes(batch, harvest, flasks, events, results),
        blockers=release_blockers(batch, decision=BatchStatus.RELEASED),
        conditional_blockers=release_blockers(batch, decision=BatchStatus.CONDITIONALLY_RELEASED)
        if allows_conditional
        else None,
        actors=list(user_model.objects.filter(pk__in=manufacturing_actors(batch)).order_by("last_name", "username")),
        signatures=signatures_for(batch),
        specification_signatures=signatures_for(batch.specification) if batch.specification else [],
        qc_samples=samples,
        events=events,
    )


# --- The batch record's steps ------------------------------------------------------------------------


def _cells(cells: int | None) -> str:
    return "" if cells is None else f"{Decimal(cells) / 1_000_000:.2f} ×10⁶ cells"


def _event_details(event: CultureEvent) -> str:
    flask = event.flask
    facts = []
    if event.kind == EventKind.SEED:
        facts.append(
            f"{_cells(flask.cells_seeded)} at {flask.seeding_density_per_cm2:,} cells/cm², "
            f"{flask.medium_volume_ml} mL medium, P{flask.passage_number}"
        )
    if event.volume_ml is not None:
        facts.append(f"{event.volume_ml} mL fresh medium")
    if event.confluence_percent is not None:
        facts.append(f"{event.confluence_percent} % confluent")
    if event.morphology_ok is not None:
        facts.append("morphology normal" if event.morphology_ok else "morphology NOT normal")
    if event.contamination_seen:
        facts.append("SIGNS OF CONTAMINATION")
    if event.total_cells is not None:
        facts.append(f"total {_cells(event.total_cells)}")
    if event.viable_cells is not None:
        facts.append(f"viable {_cells(event.viable_cells)} ({event.viability_percent} % viable)")
    if event.population_doublings is not None:
        facts.append(f"PD {event.population_doublings}")
    if event.note:
        facts.append(f"note: {event.note}")
    return "; ".join(facts)


def batch_steps(dossier: BatchDossier) -> list[Step]:
    """Every step of the batch in time order: start, culture events with lots, harvest, QC samples."""
    batch = dossier.batch
    steps = [
        Step(
            batch.started_at,
            "Batch started",
            f"aspirate {batch.aspirate.code}",
            f"{_cells(batch.mnc_total_cells)} mononuclear cells, {batch.mnc_viability_percent} % viable",
            "",
            batch.started_by.printed_name,
        )
    ]
    for event in dossier.events:
        lots = ", ".join(
            f"{use.lot.reagent.name} {use.lot.lot_number} ({use.lot.code})" for use in event.reagent_uses.all()
        )
        steps.append(
            Step(
                event.occurred_at,
                str(event.get_kind_display()),
                f"flask {event.flask.code}",
                _event_details(event),
                lots,
                event.recorded_by.printed_name,
                event.backdate_reason,
            )
        )
    harvest = dossier.harvest
    if harvest is not None:
        steps.append(
            Step(
                harvest.harvested_at,
                "Batch harvest (pooled)",
                f"batch {batch.lot_number}",
                f"{_cells(harvest.viable_cells)} viable, {harvest.viability_percent} % viable, {harvest.volume_ml} mL",
                "",
                harvest.recorded_by.printed_name,
            )
        )
    for sample in dossier.qc_samples:
        steps.append(
            Step(sample.taken_at, "QC sample taken", sample.code, sample.purpose, "", sample.taken_by.printed_name)
        )
    return sorted(steps, key=lambda s: s.when)


# --- PDFs ----------------------------------------------------------------------------------------------


def _pdf(template: str, context: dict[str, Any]) -> bytes:
    html = render_to_string(template, context)
    # Imported here: WeasyPrint loads Pango and fonts, which most requests never need.
    from weasyprint import HTML

    # The file identifier is a hash of the content, so the same records give the same bytes.
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    pdf = HTML(string=html).write_pdf(pdf_identifier=identifier)
    assert isinstance(pdf, bytes)
    return pdf


def _document_context(dossier: BatchDossier, title: str) -> dict[str, Any]:
    batch = dossier.batch
    return {
        "d": dossier,
        "batch": batch,
        "study": batch.subject.study,
        "title": title,
        "autologous": AUTOLOGOUS,
        "changed_after_signing": CHANGED_AFTER_SIGNING,
        "data_as_of": dossier.data_as_of,
    }


def certificate_of_analysis_pdf(batch: Batch) -> bytes:
    """The CoA: every criterion with method, limit, results and stored flags, and the QA signature."""
    dossier = batch_dossier(batch)
    return _pdf(
        "manufacturing/release/coa_pdf.html",
        _document_context(dossier, f"Certificate of Analysis {dossier.batch.lot_number}"),
    )


def batch_record_pdf(batch: Batch) -> bytes:
    """The batch record: every step with who and when, QC, deviations, EM and the audit-trail review."""
    dossier = batch_dossier(batch)
    context = _document_context(dossier, f"Batch record {dossier.batch.lot_number}")
    context["steps"] = dossier.steps()
    return _pdf("manufacturing/release/batch_record_pdf.html", context)
