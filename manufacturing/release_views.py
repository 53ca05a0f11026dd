"""QC and QA pages: specifications, release testing and results, invalidation, deviations, EM, documents.

Thin adapters over ``manufacturing.services.release``: a GET shows a form, a POST calls the
service. A refusal (``DomainError``) is shown on the page with HTTP 400, and the service's
transaction has written nothing. QA's release decision itself is signed in the admin
(``manufacturing.release_admin``), where the review happens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from lims.errors import DomainError
from lims.models import Deviation, DeviationStatus
from lims.signatures import signatures_for
from manufacturing import documents
from manufacturing.models import (
    Batch,
    BatchStatus,
    EmReading,
    ProcessingSession,
    QcFlag,
    QcResult,
    Specification,
    SpecStatus,
)
from manufacturing.release_forms import (
    DeviationCloseForm,
    DeviationFilterForm,
    EmReadingForm,
    ProcessingSessionForm,
    QcResultsForm,
    RetestForm,
    SignatureForm,
    SpecificationDraftForm,
    enterable,
)
from manufacturing.services import release
from samples.models import Study

ENTER_RESULTS = "manufacturing.enter_qcresult"
APPROVE_SPEC = "manufacturing.approve_specification"
DECIDE = "manufacturing.decide_release"
CULTURE = "manufacturing.add_cultureevent"
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "samples" / "data"
IN_RELEASE = (
    BatchStatus.HARVESTED,
    BatchStatus.RELEASE_TESTING,
    BatchStatus.CONDITIONALLY_RELEASED,
    BatchStatus.RELEASED,
    BatchStatus.REJECTED,
)


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, refused: bool = False) -> HttpResponse:
    """A POST that comes back to its page was refused, by the form or by the service: 400."""
    status = 400 if request.method == "POST" or refused else 200
    return render(request, f"manufacturing/release/{template}", context, status=status)


def _printed_name(request: HttpRequest) -> str:
    return str(getattr(request.user, "printed_name", request.user.get_username()))


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST, even an empty one (``request.POST or None`` would not bind an empty POST)."""
    return request.POST if request.method == "POST" else None


def _refuse(form: Any, exc: DomainError) -> None:
    form.add_error(None, exc.message)
    for reason in exc.reasons:
        if reason != exc.message:
            form.add_error(None, reason)


def _batch(lot_number: str) -> Batch:
    return get_object_or_404(
        Batch.objects.select_related("subject", "subject__study", "specification", "protocol"), lot_number=lot_number
    )


def _result(pk: int) -> QcResult:
    return get_object_or_404(
        QcResult.objects.select_related("batch", "batch__subject", "criterion", "investigation"), pk=pk
    )


# --- Overview ----------------------------------------------------------------------------------------


@login_required
@permission_required("manufacturing.view_batch", raise_exception=True)
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Batches from harvest to decision, the studies' specifications and the recent sessions."""
    batches = (
        Batch.objects.filter(status__in=IN_RELEASE)
        .select_related("subject", "specification")
        .annotate(
            oos=Count("qc_results", filter=Q(qc_results__flag=QcFlag.OOS)),
            results=Count("qc_results"),
        )
        .order_by("status", "-started_at")
    )
    context = {
        "batches": batches,
        "studies": Study.objects.order_by("code"),
        "sessions": ProcessingSession.objects.annotate(
            excursions=Count("readings", filter=Q(readings__excursion=True))
        ).order_by("-started_at")[:20],
        "open_deviations": Deviation.objects.filter(status=DeviationStatus.OPEN).count(),
    }
    return render(request, "manufacturing/release/index.html", context)


# --- Specifications --------------------------------------------------------------------------------------


def reference_release_table(study: Study) -> list[dict[str, Any]] | None:
    """The release table of the study's reference protocol file (``samples/data``), found by registry id."""
    for path in sorted(REFERENCE_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("study", {}).get("registry_id") == study.registry_id and "release_spec" in data:
            return list(data["release_spec"])
    return None


@login_required
@permission_required("manufacturing.view_specification", raise_exception=True)
@require_GET
def specification_list(request: HttpRequest, study_code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=study_code)
    specifications = (
        Specification.objects.filter(study=study)
        .select_related("created_by")
        .annotate(criterion_count=Count("criteria"))
        .order_by("-version")
    )
    context = {"study": study, "specifications": specifications, "has_reference": bool(reference_release_table(study))}
    return render(request, "manufacturing/release/spec_list.html", context)


@login_required
@permission_required("manufacturing.view_specification", raise_exception=True)
@require_GET
def specification_detail(request: HttpRequest, pk: int) -> HttpResponse:
    spec = get_object_or_404(Specification.objects.select_related("study", "created_by"), pk=pk)
    criteria = [(c, documents.limit_text(c)) for c in spec.criteria.order_by("position")]
    context = {"spec": spec, "criteria": criteria, "signatures": signatures_for(spec)}
    return render(request, "manufacturing/release/spec_detail.html", context)


@login_required
@permission_required(APPROVE_SPEC, raise_exception=True)
@require_http_methods(["GET", "POST"])
def specification_draft(request: HttpRequest, study_code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=study_code)
    rows = reference_release_table(study)
    form = SpecificationDraftForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            if rows is None:
                raise DomainError(f"Study {study.code} has no reference release table to draft from.")
            spec = release.specification_create(
                study=study,
                acting_user=request.user,
                criteria=release.criteria_from_reference(rows),
                change_summary=form.cleaned_data["change_summary"],
                allows_conditional_release=form.cleaned_data["allows_conditional_release"],
            )
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(request, f"{spec} drafted from the reference table. QA approves it with a signature.")
            return redirect("release:spec-detail", spec.pk)
    return _page(request, "spec_draft.html", {"study": study, "form": form, "rows": rows or []})


@login_required
@permission_required(APPROVE_SPEC, raise_exception=True)
@require_http_methods(["GET", "POST"])
def specification_approve(request: HttpRequest, pk: int) -> HttpResponse:
    spec = get_object_or_404(Specification.objects.select_related("study"), pk=pk)
    form = SignatureForm(_posted(request), initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        try:
            release.specification_approve(
                specification=spec, acting_user=request.user, signature=form.signature("approved")
            )
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(request, f"{spec} is approved and in force for batches that start testing from now.")
            return redirect("release:spec-detail", spec.pk)
    context = {
        "form": form,
        "title": f"Approve {spec}",
        "record": spec,
        "meaning": "Approved",
        "submit": "Sign: approved",
        "cancel": reverse("release:spec-detail", args=[spec.pk]),
        "intro": "Approving puts this version in force: batches that start release testing from now are "
        "tested against it, and the version in force until now is superseded.",
    }
    return _page(request, "sign.html", context)


# --- A batch in release --------------------------------------------------------------------------------


@login_required
@permission_required(["manufacturing.view_batch", "manufacturing.view_qcresult"], raise_exception=True)
@require_GET
def batch_page(request: HttpRequest, lot_number: str) -> HttpResponse:
    dossier = documents.batch_dossier(_batch(lot_number))
    batch = dossier.batch
    context = {
        "d": dossier,
        "batch": batch,
        "can_start": batch.status == BatchStatus.HARVESTED,
        "can_enter": batch.status == BatchStatus.RELEASE_TESTING,
        "admin_review": reverse("admin:manufacturing_batch_release_review", args=[batch.pk])
        if _admin_review_wired()
        else "",
    }
    return render(request, "manufacturing/release/batch.html", context)


def _admin_review_wired() -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse("admin:manufacturing_batch_release_review", args=[0])
    except NoReverseMatch:
        return False
    return True


@login_required
@permission_required(ENTER_RESULTS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def batch_start_testing(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = _batch(lot_number)
    error = ""
    if request.method == "POST":
        try:
            release.batch_start_release_testing(batch=batch, acting_user=request.user)
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                f"Release testing of {batch.lot_number} started; the specification in force is frozen on the batch.",
            )
            return redirect("release:batch", batch.lot_number)
    in_force = Specification.objects.filter(study_id=batch.subject.study_id, status=SpecStatus.APPROVED).first()
    return _page(request, "start_testing.html", {"batch": batch, "in_force": in_force, "error": error})


@login_required
@permission_required(ENTER_RESULTS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def results_entry(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = _batch(lot_number)
    dossier = documents.batch_dossier(batch)
    waiting = [line.criterion for line in dossier.criteria if line.missing and enterable(line.criterion)]
    form = QcResultsForm(_posted(request), criteria=waiting, samples=dossier.qc_samples, analyst=_printed_name(request))
    if request.method == "POST" and form.is_valid():
        current = None
        saved: list[QcResult] = []
        try:
            # One transaction for the whole sheet: a refused row must write none of the others, so
            # the analyst corrects that row and sends the sheet again without creating duplicates
            # (and without OOS investigations opened for rows that were never saved).
            with transaction.atomic():
                for criterion, entry in form.entries():
                    current = criterion
                    saved.append(
                        release.qc_result_record(
                            batch=batch,
                            criterion=criterion,
                            acting_user=request.user,
                            entry=entry,
                            sample=form.cleaned_data["sample"],
                        )
                    )
        except DomainError as exc:
            where = f"{current.attribute}: " if current is not None and current.attribute not in exc.message else ""
            form.add_error(None, f"{where}{exc.message}")
        else:
            _announce_results(request, batch, saved)
            return redirect("release:batch", batch.lot_number)
    context = {"batch": batch, "form": form, "rows": form.rows(), "d": dossier}
    return _page(request, "results_entry.html", context, refused=request.method == "POST")


def _announce_results(request: HttpRequest, batch: Batch, saved: list[QcResult]) -> None:
    failed = [r for r in saved if r.flag in (QcFlag.OOS, QcFlag.NOT_EVALUABLE)]
    if failed:
        words = "; ".join(f"{r.criterion.attribute} {r.display_value}: {documents.flag_word(r.flag)}" for r in failed)
        messages.warning(request, f"{len(saved)} result(s) saved. {words} — an investigation is open for QA.")
    else:
        messages.success(request, f"{len(saved)} result(s) of {batch.lot_number} saved; none is out of specification.")


@login_required
@permission_required(ENTER_RESULTS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def result_retest(request: HttpRequest, pk: int) -> HttpResponse:
    original = _result(pk)
    form = RetestForm(_posted(request), criterion=original.criterion, analyst=_printed_name(request))
    if request.method == "POST" and form.is_valid():
        try:
            retest = release.qc_result_record(
                batch=original.batch,
                criterion=original.criterion,
                acting_user=request.user,
                entry=form.entry(original.criterion),
                retest_of=original,
            )
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(
                request,
                f"Retest of {original.criterion.attribute} saved: {retest.display_value}, "
                f"{documents.flag_word(retest.flag)}. The first result keeps its flag "
                f"({documents.flag_word(original.flag)}) until QA invalidates it.",
            )
            return redirect("release:batch", original.batch.lot_number)
    context = {"original": original, "form": form, "row": form.row(original.criterion)}
    return _page(request, "retest.html", context)


@login_required
@permission_required(DECIDE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def result_invalidate(request: HttpRequest, pk: int) -> HttpResponse:
    result = _result(pk)
    form = SignatureForm(_posted(request), initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        try:
            release.qc_result_invalidate(result=result, acting_user=request.user, signature=form.signature("reviewed"))
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(
                request,
                f"{result.criterion.attribute} result {result.display_value} invalidated; its flag "
                f"{documents.flag_word(result.flag)} stays on record.",
            )
            return redirect("release:batch", result.batch.lot_number)
    context = {
        "form": form,
        "title": f"Invalidate the {result.criterion.attribute} result of {result.batch.lot_number}",
        "record": result,
        "result": result,
        "meaning": "Reviewed",
        "submit": "Sign: invalidate this result",
        "cancel": reverse("release:batch", args=[result.batch.lot_number]),
        "intro": "Invalidate only a result proven wrong by the investigation (e.g. a laboratory error). The "
        "result, its value and its flag stay on record; it stops counting for release. The reason is the "
        "investigation's conclusion.",
    }
    return _page(request, "sign.html", context)


# --- Documents ------------------------------------------------------------------------------------------


def _pdf_response(pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@login_required
@permission_required(["manufacturing.view_batch", "manufacturing.view_qcresult"], raise_exception=True)
@require_GET
def certificate_pdf(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = _batch(lot_number)
    return _pdf_response(documents.certificate_of_analysis_pdf(batch), f"CoA-{batch.lot_number}.pdf")


@login_required
@permission_required(["manufacturing.view_batch", "manufacturing.view_qcresult"], raise_exception=True)
@require_GET
def batch_record(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = _batch(lot_number)
    return _pdf_response(documents.batch_record_pdf(batch), f"batch-record-{batch.lot_number}.pdf")


# --- Deviations -------------------------------------------------------------------------------------------


@login_required
@permission_required("lims.view_deviation", raise_exception=True)
@require_GET
def deviation_list(request: HttpRequest) -> HttpResponse:
    filters = DeviationFilterForm(request.GET or None)
    status = (filters.cleaned_data["status"] if filters.is_valid() else "") or "open"
    deviations = Deviation.objects.select_related("opened_by", "content_type").order_by("-opened_at", "-id")
    if status in DeviationStatus.values:
        deviations = deviations.filter(status=status)
    context = {"deviations": deviations, "status": status, "filters": filters}
    return render(request, "manufacturing/release/deviation_list.html", context)


@login_required
@permission_required("manufacturing.close_deviation", raise_exception=True)
@require_http_methods(["GET", "POST"])
def deviation_close(request: HttpRequest, code: str) -> HttpResponse:
    deviation = get_object_or_404(Deviation.objects.select_related("opened_by"), code=code)
    form = DeviationCloseForm(_posted(request), initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release.deviation_close(
                deviation=deviation,
                acting_user=request.user,
                signature=form.signature(data["meaning"]),
                classification=data["classification"],
                impact_assessment=data["impact_assessment"],
                corrective_action=data["corrective_action"],
            )
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(request, f"Deviation {deviation.code} closed ({data['classification']}).")
            return redirect(f"{reverse('release:deviation-list')}?status=closed")
    return _page(request, "deviation_close.html", {"deviation": deviation, "form": form})


# --- Processing sessions and environmental monitoring -------------------------------------------------------


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def session_new(request: HttpRequest) -> HttpResponse:
    form = ProcessingSessionForm(_posted(request), initial={"operators": _printed_name(request)})
    if request.method == "POST" and form.is_valid():
        try:
            session = release.processing_session_open(acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            _refuse(form, exc)
        else:
            messages.success(request, f"Session {session} recorded. Enter its EM readings next.")
            return redirect("release:session-detail", session.pk)
    return _page(request, "session_form.html", {"form": form})


@login_required
@permission_required(["manufacturing.view_processingsession", "manufacturing.view_emreading"], raise_exception=True)
@require_GET
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(ProcessingSession.objects.select_related("recorded_by"), pk=pk)
    context = {
        "session": session,
        "readings": EmReading.objects.filter(session=session).select_related("recorded_by").order_by("recorded_at"),
        "batches": session.batches.select_related("subject").order_by("lot_number"),
    }
    return render(request, "manufacturing/release/session_detail.html", context)


@login_required
@permission_required(CULTURE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def em_reading_new(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(ProcessingSession, pk=pk)
    form = EmReadingForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            reading = release.em_reading_record(session=session, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            _refuse(form, exc)
        else:
            announce: Callable[[HttpRequest, str], None] = messages.warning if reading.excursion else messages.success
            announce(
                request,
                f"EXCURSION: {reading.get_kind_display()} at {reading.location} = {reading.value} (limit "
                f"{reading.limit}). A deviation was opened on every batch of this session for QA."
                if reading.excursion
                else f"Reading recorded: {reading.value}, within the grade {reading.grade} limit.",
            )
            return redirect("release:session-detail", session.pk)
    return _page(request, "em_reading_form.html", {"session": session, "form": form})
