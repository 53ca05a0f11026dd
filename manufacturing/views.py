"""Cleanroom pages: batches, flasks and their culture events, reagent lots.

Thin adapters over ``manufacturing.services``: a GET shows a form, a POST calls one service. A
refusal (DomainError) is shown on the form with HTTP 400; the service's transaction has
written nothing. Pages read through ``manufacturing.selectors`` so that their query count does
not grow with the number of flasks or events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from lims import labels
from lims.errors import DomainError
from lims.forms import ScanForm
from lims.models import Deviation, Label, LabelKind
from lims.selectors import label_item_context
from lims.services import scan_resolve
from manufacturing import selectors
from manufacturing.forms import (
    BatchStartForm,
    CleanroomForm,
    DiscardForm,
    FeedForm,
    HarvestForm,
    LotFilterForm,
    LotReceiveForm,
    ObserveForm,
    PassageForm,
    ReasonForm,
    SeedForm,
)
from manufacturing.models import (
    Batch,
    BatchStatus,
    CultureEvent,
    EventKind,
    Flask,
    FlaskStatus,
    LotStatus,
    ReagentLot,
)
from manufacturing.plots import growth_curve_svg
from manufacturing.services import culture
from manufacturing.services import lots as lot_services
from samples.models import Aspirate

CULTURE = "manufacturing.add_cultureevent"
LAST_EVENTS_ON_FLASK_PAGE = 12


# --- How numbers read on the pages -----------------------------------------------------------


def million_cells(cells: int | None) -> str:
    """Cells as the bench reads them: 4.20 ×10⁶ cells."""
    if cells is None:
        return "—"
    return f"{Decimal(cells) / 1_000_000:.2f} ×10⁶ cells"


def event_facts(event: CultureEvent, flask: Flask) -> list[str]:
    """The numbers of one event, each with its unit."""
    facts: list[str] = []
    if event.kind == EventKind.SEED:
        facts.append(f"{million_cells(flask.cells_seeded)} at {flask.seeding_density_per_cm2:,} cells/cm²")
        facts.append(f"{flask.medium_volume_ml} mL medium in a {flask.vessel_type.name}")
    if event.volume_ml is not None:
        facts.append(f"{event.volume_ml} mL fresh medium")
    if event.confluence_percent is not None:
        facts.append(f"{event.confluence_percent} % confluent")
    if event.morphology_ok is not None:
        facts.append("morphology normal" if event.morphology_ok else "morphology NOT normal")
    signs = [
        name
        for name, seen in (
            ("turbid", event.turbidity),
            ("colour changed", event.colour_change),
            ("contamination under the microscope", event.microscopy_contamination),
        )
        if seen
    ]
    if signs:
        facts.append("SIGNS OF CONTAMINATION: " + ", ".join(signs))
    if event.total_cells is not None:
        facts.append(f"total {million_cells(event.total_cells)}")
    if event.viable_cells is not None:
        facts.append(f"viable {million_cells(event.viable_cells)} ({event.viability_percent} % viable)")
    if event.population_doublings is not None:
        facts.append(f"PD {event.population_doublings}")
    if event.doubling_time_hours is not None:
        facts.append(f"doubling time {event.doubling_time_hours} h")
    return facts


@dataclass(frozen=True)
class EventRow:
    event: CultureEvent
    flask: Flask
    facts: list[str]
    lots: list[ReagentLot]


def event_rows(pairs: Iterable[tuple[Flask, CultureEvent]]) -> list[EventRow]:
    """Newest first, from events already loaded with their reagent uses."""
    rows = [
        EventRow(event=e, flask=f, facts=event_facts(e, f), lots=[use.lot for use in e.reagent_uses.all()])
        for f, e in pairs
    ]
    rows.sort(key=lambda row: (row.event.occurred_at, row.event.pk), reverse=True)
    return rows


def passage_pd(flask: Flask) -> Decimal | None:
    """The flask's own population doublings, known once it is passaged."""
    for event in flask.events.all():
        if event.kind == EventKind.PASSAGE:
            return event.population_doublings
    return None


@dataclass
class TreeNode:
    flask: Flask
    cells: str
    pd: Decimal | None
    children: list[TreeNode] = field(default_factory=list)


def lineage_tree(nodes: list[selectors.LineageNode]) -> list[TreeNode]:
    return [
        TreeNode(
            node.flask, million_cells(node.flask.cells_seeded), passage_pd(node.flask), lineage_tree(node.children)
        )
        for node in nodes
    ]


# --- Shared shape of a form page --------------------------------------------------------------


def _status(request: HttpRequest) -> int:
    """A POST that comes back to its page was refused, by the form or by the service."""
    return 400 if request.method == "POST" else 200


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST, even an empty one: ``request.POST or None`` leaves an empty POST unbound,
    refused with a 400 that says nothing."""
    return request.POST if request.method == "POST" else None


def _form_page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, f"manufacturing/{template}", context, status=_status(request))


def _refuse(form: CleanroomForm, exc: DomainError, context: dict[str, Any]) -> None:
    """Show the service's sentence; open the fields the refusal asks for."""
    form.add_error(None, exc.message)
    if exc.code == "density_outside_range":
        context["ask_density_reason"] = True
    if exc.code == "reason_required" and "backdate_reason" in form.fields:
        context["open_backdating"] = True


def _backdating(form: CleanroomForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {"occurred_at": data.get("occurred_at"), "backdate_reason": data.get("backdate_reason", "")}


def _density_ranges(protocol: Any) -> dict[str, str]:
    return {
        "p0_density": f"{protocol.p0_density_min_per_cm2:,}–{protocol.p0_density_max_per_cm2:,} cells/cm²",
        "passage_density": f"{protocol.passage_density_min_per_cm2:,}–{protocol.passage_density_max_per_cm2:,} "
        "cells/cm²",
    }


def _flask_or_404(code: str) -> Flask:
    try:
        return selectors.flask_for_page(code)
    except Flask.DoesNotExist as exc:
        raise Http404(f"No flask {code}.") from exc


def _batch_or_404(lot_number: str) -> Batch:
    try:
        return selectors.batch_for_page(lot_number)
    except Batch.DoesNotExist as exc:
        raise Http404(f"No batch {lot_number}.") from exc


def _label_context(code: str) -> dict[str, Any]:
    label = Label.objects.filter(code=code).select_related("content_type", "created_by").first()
    return label_item_context(label) if label else {}


# --- Batches -----------------------------------------------------------------------------------


@login_required
@permission_required("manufacturing.view_batch", raise_exception=True)
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    batches = selectors.batches_for_list().annotate(
        flask_count=Count("flasks"),
        in_culture_count=Count("flasks", filter=Q(flasks__status=FlaskStatus.IN_CULTURE)),
    )
    if status in BatchStatus.values:
        batches = batches.filter(status=status)
    context = {"batches": batches, "statuses": BatchStatus.choices, "status": status}
    return render(request, "manufacturing/batch_list.html", context)


@login_required
@permission_required("manufacturing.add_batch", raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_start_scan(request: HttpRequest) -> HttpResponse:
    """Scan the aspirate tube to start its batch, so the batch opens from the tube in hand."""
    form = ScanForm(_posted(request))
    error = ""
    if request.method == "POST" and form.is_valid():
        result = scan_resolve(payload=form.cleaned_data["payload"], acting_user=request.user)
        if result.label is None:
            error = result.error
        elif result.label.kind != LabelKind.ASPIRATE:
            error = f"{result.label.code} is not an aspirate tube. Scan the label on the tube."
        else:
            return redirect("manufacturing:batch-start", aspirate_code=result.label.code)
        form = ScanForm()
    elif request.method == "POST":
        error = "Nothing was scanned. Scan the QR code on the aspirate tube."
    return render(
        request,
        "manufacturing/batch_start_scan.html",
        {"form": form, "error": error},
        status=400 if error else 200,
    )


@login_required
@permission_required("manufacturing.add_batch", raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_start(request: HttpRequest, aspirate_code: str) -> HttpResponse:
    aspirate = get_object_or_404(
        Aspirate.objects.select_related("subject", "protocol__study", "received_by"), code=aspirate_code
    )
    form = BatchStartForm(_posted(request), acting_user=request.user)
    context: dict[str, Any] = {"form": form, "aspirate": aspirate}
    if request.method == "POST" and form.is_valid():
        try:
            batch = culture.batch_start(aspirate=aspirate, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.success(request, f"Batch {batch.lot_number} started from aspirate {aspirate.code}. Seed P0 next.")
            return redirect(batch)
    context["existing"] = Batch.objects.filter(aspirate=aspirate).first()
    return _form_page(request, "batch_start.html", context)


@login_required
@permission_required("manufacturing.view_batch", raise_exception=True)
@require_GET
def batch_detail(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = _batch_or_404(lot_number)
    flasks = list(batch.flasks.all())
    counts = Counter(f.status for f in flasks)
    points = selectors.growth_curve(batch, flasks)
    harvest = getattr(batch, "harvest", None)
    context = {
        "batch": batch,
        "flasks": flasks,
        "culture_day": batch.culture_day(),
        "mnc": million_cells(batch.mnc_total_cells),
        "status_counts": [(value, label, counts[value]) for value, label in FlaskStatus.choices if counts[value]],
        "tree": lineage_tree(selectors.lineage(flasks)),
        "timeline": event_rows((f, e) for f in flasks for e in f.events.all()),
        "harvest": harvest,
        "harvest_cells": million_cells(harvest.viable_cells) if harvest else "",
        "points": points,
        "growth_svg": growth_curve_svg(
            points,
            title=f"Growth of batch {batch.lot_number}",
            target_days=batch.protocol.target_culture_days,
        )
        if points
        else "",
        "can_seed": batch.status == BatchStatus.ISOLATED,
        "can_harvest": batch.status == BatchStatus.IN_CULTURE,
    }
    return render(request, "manufacturing/batch_detail.html", context)


@login_required
@permission_required(["manufacturing.view_batch", "lims.view_label"], raise_exception=True)
@require_GET
def batch_labels_pdf(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = get_object_or_404(Batch, lot_number=lot_number)
    found = list(Label.objects.filter(kind=LabelKind.FLASK, code__in=batch.flasks.values("code")).order_by("code"))
    if not found:
        raise Http404(f"Batch {batch.lot_number} has no flask labels yet: seed P0 first.")
    pdf = labels.label_sheet_pdf([labels.label_text_for(label) for label in found])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="flask-labels-{batch.lot_number}.pdf"'
    return response


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_seed(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("subject", "protocol"), lot_number=lot_number)
    form = SeedForm(_posted(request), acting_user=request.user)
    context: dict[str, Any] = {
        "form": form,
        "batch": batch,
        "mnc": million_cells(batch.mnc_total_cells),
        **_density_ranges(batch.protocol),
    }
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flasks = culture.batch_seed(
                batch=batch,
                acting_user=request.user,
                flask_count=data["flask_count"],
                seeding=culture.Seeding(
                    vessel_type=data["vessel_type"],
                    cells_per_flask=data["cells_per_flask"],
                    medium_volume_ml=data["medium_volume_ml"],
                    density_reason=data["density_reason"],
                ),
                lots=data["lots"],
                **_backdating(form),
            )
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.success(
                request,
                f"Seeded {len(flasks)} flask(s) at P0: day 0 of batch {batch.lot_number}. Print the flask labels "
                "and stick each on its flask.",
            )
            return redirect(batch)
    return _form_page(request, "batch_seed.html", context)


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_harvest(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("subject"), lot_number=lot_number)
    form = HarvestForm(_posted(request), acting_user=request.user)
    context: dict[str, Any] = {
        "form": form,
        "batch": batch,
        "in_culture": batch.flasks.filter(status=FlaskStatus.IN_CULTURE).count(),
        "quarantined": list(batch.flasks.filter(status=FlaskStatus.QUARANTINED).values_list("code", flat=True)),
    }
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            harvest = culture.batch_harvest(
                batch=batch,
                acting_user=request.user,
                viable_cells=data["viable_cells"],
                viability_percent=data["viability_percent"],
                volume_ml=data["volume_ml"],
                **_backdating(form),
            )
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.success(
                request,
                f"Batch {batch.lot_number} harvested: {million_cells(harvest.viable_cells)} viable in "
                f"{harvest.volume_ml} mL.",
            )
            return redirect(batch)
    return _form_page(request, "batch_harvest.html", context)


# --- Flasks -------------------------------------------------------------------------------------


@login_required
@permission_required("manufacturing.view_flask", raise_exception=True)
@require_GET
def flask_detail(request: HttpRequest, code: str) -> HttpResponse:
    flask = _flask_or_404(code)
    events = list(flask.events.all())
    protocol = flask.batch.protocol
    in_culture = flask.status == FlaskStatus.IN_CULTURE
    rows = event_rows((flask, e) for e in events)
    context = {
        "flask": flask,
        "batch": flask.batch,
        "culture_day": flask.batch.culture_day(),
        "due": selectors.flask_due(flask, events),
        "rows": rows[:LAST_EVENTS_ON_FLASK_PAGE],
        "more_events": max(0, len(rows) - LAST_EVENTS_ON_FLASK_PAGE),
        "cells_seeded": million_cells(flask.cells_seeded),
        "pd": passage_pd(flask),
        "children": list(flask.children.all()),
        "deviations": Deviation.objects.filter(
            content_type=ContentType.objects.get_for_model(Flask), object_id=flask.pk
        ).order_by("-opened_at"),
        "in_culture": in_culture,
        "can_passage": in_culture and flask.passage_number + 1 <= protocol.passage_limit,
        "can_discard": flask.status in {FlaskStatus.IN_CULTURE, FlaskStatus.QUARANTINED},
        "passage_limit": protocol.passage_limit,
        **_label_context(flask.code),
    }
    return render(request, "manufacturing/flask_detail.html", context)


def _flask_event_page(
    request: HttpRequest,
    code: str,
    *,
    form_class: type[CleanroomForm],
    template: str,
    record: Callable[[Flask, dict[str, Any]], tuple[str, str]],
) -> HttpResponse:
    """GET shows the form for a flask; POST records one event through ``record``, which names the outcome."""
    flask = get_object_or_404(
        Flask.objects.select_related("batch", "batch__protocol", "batch__subject", "vessel_type"), code=code
    )
    form = form_class(_posted(request), acting_user=request.user, initial={"volume_ml": flask.medium_volume_ml})
    context: dict[str, Any] = {
        "form": form,
        "flask": flask,
        "batch": flask.batch,
        "cells_seeded": million_cells(flask.cells_seeded),
        **_density_ranges(flask.batch.protocol),
    }
    if request.method == "POST" and form.is_valid():
        try:
            level, text = record(flask, form.cleaned_data)
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.add_message(request, messages.WARNING if level == "warning" else messages.SUCCESS, text)
            return redirect(flask)
    return _form_page(request, template, context)


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def flask_feed(request: HttpRequest, code: str) -> HttpResponse:
    def record(flask: Flask, data: dict[str, Any]) -> tuple[str, str]:
        culture.flask_feed(
            flask=flask,
            acting_user=request.user,
            volume_ml=data["volume_ml"],
            lots=data["lots"],
            client_token=data["client_token"],
            occurred_at=data["occurred_at"],
            backdate_reason=data["backdate_reason"],
        )
        return "success", f"Feed of {flask.code} recorded: {data['volume_ml']} mL."

    return _flask_event_page(request, code, form_class=FeedForm, template="flask_feed.html", record=record)


def _deviation_of(flask: Flask) -> Deviation | None:
    return (
        Deviation.objects.filter(content_type=ContentType.objects.get_for_model(Flask), object_id=flask.pk)
        .order_by("-opened_at", "-id")
        .first()
    )


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def flask_observe(request: HttpRequest, code: str) -> HttpResponse:
    def record(flask: Flask, data: dict[str, Any]) -> tuple[str, str]:
        event = culture.flask_observe(
            flask=flask,
            acting_user=request.user,
            observation=culture.Observation(
                confluence_percent=data["confluence_percent"],
                morphology_ok=data["morphology_ok"],
                note=data["note"],
                turbidity=data["turbidity"],
                colour_change=data["colour_change"],
                microscopy_contamination=data["microscopy_contamination"],
            ),
            client_token=data["client_token"],
            occurred_at=data["occurred_at"],
            backdate_reason=data["backdate_reason"],
        )
        if event.contamination_seen:
            deviation = _deviation_of(flask)
            opened = f"Deviation {deviation.code} was opened for QA" if deviation else "A deviation was opened for QA"
            return (
                "warning",
                f"Flask {flask.code} is now QUARANTINED: signs of contamination were recorded. {opened}. "
                "Do not open, feed or passage this flask; keep it apart until QA decides.",
            )
        return "success", f"Observation of {flask.code} recorded: {event.confluence_percent} % confluent."

    return _flask_event_page(request, code, form_class=ObserveForm, template="flask_observe.html", record=record)


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def flask_passage(request: HttpRequest, code: str) -> HttpResponse:
    def record(flask: Flask, data: dict[str, Any]) -> tuple[str, str]:
        event = culture.flask_passage(
            flask=flask,
            acting_user=request.user,
            passage=culture.Passage(
                detachment_lot=data["detachment_lot"],
                total_cells=data["total_cells"],
                viable_cells=data["viable_cells"],
                children=data["children"],
                media_lots=data["media_lots"] or [],
                seeding=culture.Seeding(
                    vessel_type=data["vessel_type"],
                    cells_per_flask=data["cells_per_flask"],
                    medium_volume_ml=data["medium_volume_ml"],
                    density_reason=data["density_reason"],
                ),
            ),
            client_token=data["client_token"],
            occurred_at=data["occurred_at"],
            backdate_reason=data["backdate_reason"],
        )
        children = ", ".join(Flask.objects.filter(parent=flask).order_by("code").values_list("code", flat=True))
        return (
            "success",
            f"{flask.code} passaged (PD {event.population_doublings}) into {children} at P{flask.passage_number + 1}. "
            "Print their labels from the batch page.",
        )

    return _flask_event_page(request, code, form_class=PassageForm, template="flask_passage.html", record=record)


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def flask_discard(request: HttpRequest, code: str) -> HttpResponse:
    def record(flask: Flask, data: dict[str, Any]) -> tuple[str, str]:
        culture.flask_discard(
            flask=flask, acting_user=request.user, reason=data["reason"], client_token=data["client_token"]
        )
        return "success", f"Flask {flask.code} discarded."

    return _flask_event_page(request, code, form_class=DiscardForm, template="flask_discard.html", record=record)


# --- Reagent lots ---------------------------------------------------------------------------------


@login_required
@permission_required("manufacturing.view_reagentlot", raise_exception=True)
@require_GET
def lot_list(request: HttpRequest) -> HttpResponse:
    filters = LotFilterForm(request.GET or None)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    lots = ReagentLot.objects.select_related("reagent").order_by("reagent__name", "expiry_date", "code")
    if status:
        lots = lots.filter(status=status)
    context = {"lots": lots, "statuses": LotStatus.choices, "status": status}
    return render(request, "manufacturing/lot_list.html", context)


@login_required
@permission_required("manufacturing.add_reagentlot", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lot_receive(request: HttpRequest) -> HttpResponse:
    form = LotReceiveForm(_posted(request), acting_user=request.user)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            lot = lot_services.reagent_lot_receive(acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.success(
                request,
                f"{lot} received into quarantine. Print its label and stick it on; QA must release it before use.",
            )
            return redirect(lot)
    return _form_page(request, "lot_receive.html", context)


def _lot_or_404(code: str) -> ReagentLot:
    return get_object_or_404(ReagentLot.objects.select_related("reagent", "received_by"), code=code)


@login_required
@permission_required("manufacturing.view_reagentlot", raise_exception=True)
@require_GET
def lot_detail(request: HttpRequest, code: str) -> HttpResponse:
    lot = _lot_or_404(code)
    context = {
        "lot": lot,
        "uses": lot.uses.count(),
        "impact": lot_services.recall_impact(lot) if lot.status == LotStatus.RECALLED else None,
        "expired": lot.expiry_date < timezone.localdate(),
        "can_release": lot.status == LotStatus.QUARANTINE,
        "can_recall": lot.status != LotStatus.RECALLED,
        **_label_context(lot.code),
    }
    return render(request, "manufacturing/lot_detail.html", context)


def _lot_decision(
    request: HttpRequest, code: str, *, action: str, decide: Callable[[ReagentLot, str], str]
) -> HttpResponse:
    lot = _lot_or_404(code)
    form = ReasonForm(_posted(request), acting_user=request.user)
    context: dict[str, Any] = {"form": form, "lot": lot, "action": action}
    if request.method == "POST" and form.is_valid():
        try:
            text = decide(lot, form.cleaned_data["reason"])
        except DomainError as exc:
            _refuse(form, exc, context)
        else:
            messages.success(request, text)
            return redirect(lot)
    return _form_page(request, "lot_decision.html", context)


@login_required
@permission_required("manufacturing.release_reagentlot", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lot_release(request: HttpRequest, code: str) -> HttpResponse:
    def decide(lot: ReagentLot, reason: str) -> str:
        released = lot_services.reagent_lot_release(lot=lot, acting_user=request.user, reason=reason)
        return f"{released} is released for use until {released.expiry_date:%Y-%m-%d}."

    return _lot_decision(request, code, action="Release", decide=decide)


@login_required
@permission_required("manufacturing.recall_reagentlot", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lot_recall(request: HttpRequest, code: str) -> HttpResponse:
    def decide(lot: ReagentLot, reason: str) -> str:
        impact = lot_services.reagent_lot_recall(lot=lot, acting_user=request.user, reason=reason)
        return (
            f"{impact.lot} is recalled and can no longer be used. It was used in {len(impact.flasks)} flask(s) "
            f"of {len(impact.batches)} batch(es), listed below."
        )

    return _lot_decision(request, code, action="Recall", decide=decide)
