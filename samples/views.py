"""Clinic-side and cleanroom-side pages of studies, subjects, aspirates and follow-up.

Thin adapters: a GET shows a form, a POST calls one service. A refusal (DomainError) is shown
on the form with HTTP 400; the service's transaction has written nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from lims.errors import DomainError
from lims.forms import ScanForm
from lims.models import LabelKind
from lims.selectors import label_item_context
from lims.services import scan_resolve
from lims.signatures import SignatureRequest
from samples import services
from samples.forms import (
    AspirateCollectForm,
    AspirateDispatchForm,
    AspirateReceiveForm,
    AssayResultsForm,
    Das28Form,
    EligibilityChecklistForm,
    FollowUpSampleForm,
    ProtocolReviseForm,
    ReasonForm,
    SignForm,
    SubjectRegisterForm,
)
from samples.models import Aspirate, FollowUpSample, Study, Subject
from samples.plots import endpoint_slopegraph
from samples.selectors import (
    PERCENT_PLACES,
    VALUE_PLACES,
    aspirate_for_page,
    checklist_rows,
    deviations_for,
    endpoint_csv,
    follow_up_sample_for_page,
    item_label,
    protocol_changes,
    protocol_draft_or_none,
    protocol_for_approval,
    protocol_in_force_or_none,
    protocol_parameters,
    sample_result_rows,
    studies_for_list,
    study_endpoint,
    study_page,
    subject_for_page,
    subject_page,
    subject_with_checklist,
    subjects_for_list,
)


def _status(request: HttpRequest) -> int:
    """A POST that comes back to its page was refused (by the form or the service)."""
    return 400 if request.method == "POST" else 200


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST, even an empty one: ``request.POST or None`` leaves an empty POST unbound,
    refused with a 400 that says nothing."""
    return request.POST if request.method == "POST" else None


def _form_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    return render(request, "samples/form_page.html", context, status=_status(request))


def _signature(form: SignForm, meaning: str) -> SignatureRequest:
    data = form.cleaned_data
    return SignatureRequest(
        username=data["username"], password=data["password"], meaning=meaning, reason=data["reason"]
    )


# --- Studies and protocols -----------------------------------------------------------------


@login_required
@permission_required("samples.view_study", raise_exception=True)
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "samples/study_list.html", {"studies": studies_for_list()})


@login_required
@permission_required("samples.view_study", raise_exception=True)
@require_GET
def study_detail(request: HttpRequest, code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=code)
    return render(request, "samples/study_detail.html", {"page": study_page(study)})


@login_required
@permission_required("samples.add_protocolversion", raise_exception=True)
@require_http_methods(["GET", "POST"])
def protocol_revise(request: HttpRequest, code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=code)
    context: dict[str, Any] = {"study": study, "draft": protocol_draft_or_none(study)}
    try:
        current = services.protocol_in_force(study)
    except DomainError as exc:
        context["error"] = exc.message
        return render(request, "samples/protocol_revise.html", context, status=_status(request))
    context["current"] = current
    form = ProtocolReviseForm(_posted(request), current=current)
    if request.method == "POST" and form.is_valid():
        try:
            draft = services.protocol_revise(
                study=study,
                acting_user=request.user,
                changes=form.changes(),
                change_summary=form.cleaned_data["change_summary"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Draft protocol v{draft.version} saved. It comes into force once it is approved and signed."
            )
            return redirect("samples:study-detail", study.code)
    context["form"] = form
    return render(request, "samples/protocol_revise.html", context, status=_status(request))


@login_required
@permission_required("samples.approve_protocolversion", raise_exception=True)
@require_http_methods(["GET", "POST"])
def protocol_approve(request: HttpRequest, pk: int) -> HttpResponse:
    protocol = get_object_or_404(protocol_for_approval(), pk=pk)
    form = SignForm(_posted(request), initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        try:
            services.protocol_approve(
                protocol=protocol, acting_user=request.user, signature=_signature(form, "approved")
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Protocol v{protocol.version} of {protocol.study.code} is approved and in force."
            )
            return redirect("samples:study-detail", protocol.study.code)
    current = protocol_in_force_or_none(protocol.study)
    context = {
        "protocol": protocol,
        "form": form,
        "current": current,
        "changes": protocol_changes(protocol, current) if current and current.pk != protocol.pk else [],
        "parameters": protocol_parameters(protocol),
    }
    return render(request, "samples/protocol_approve.html", context, status=_status(request))


# --- Subjects and eligibility ----------------------------------------------------------------


@login_required
@permission_required("samples.view_subject", raise_exception=True)
@require_GET
def subject_list(request: HttpRequest) -> HttpResponse:
    study_code = request.GET.get("study") or None
    context = {
        "subjects": subjects_for_list(study_code),
        "studies": Study.objects.order_by("code"),
        "study_code": study_code,
    }
    return render(request, "samples/subject_list.html", context)


@login_required
@permission_required("samples.add_subject", raise_exception=True)
@require_http_methods(["GET", "POST"])
def subject_register(request: HttpRequest, code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=code)
    form = SubjectRegisterForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            subject = services.subject_register(study=study, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Subject {subject.code} registered. Print the wristband and put it on.")
            return redirect(subject)
    return _form_page(
        request,
        {
            "title": f"Register a subject in {study.code}",
            "intro": "Stroma stores no names: the subject is known by the code it gives here.",
            "form": form,
            "submit": "Register subject",
            "cancel": study.get_absolute_url(),
        },
    )


@login_required
@permission_required("samples.view_subject", raise_exception=True)
@require_GET
def subject_detail(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(subject_for_page(), code=code)
    page = subject_page(subject)
    context: dict[str, Any] = {
        "page": page,
        "subject": subject,
        "content_type_id": ContentType.objects.get_for_model(Subject).pk,
    }
    if page.wristband is not None:
        context.update(label_item_context(page.wristband))
    return render(request, "samples/subject_detail.html", context)


@login_required
@permission_required("samples.confirm_eligibility", raise_exception=True)
@require_http_methods(["GET", "POST"])
def eligibility_checklist(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(subject_with_checklist(), code=code)
    saved = {a.criterion_id: a.answer for a in subject.eligibility_answers.all()}
    form = EligibilityChecklistForm(_posted(request), criteria=subject.protocol.criteria.all(), answers=saved)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.subject_answer_eligibility(
                subject=subject, acting_user=request.user, answers=form.answers()
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            if result.eligible:
                outcome = "every criterion is met; eligibility can now be confirmed and signed."
            elif result.reasons:
                outcome = "not eligible: " + " ".join(result.reasons)
            else:
                outcome = f"{result.unanswered} item(s) still to answer."
            messages.success(request, f"Checklist of {subject.code} saved: {outcome}")
            return redirect(subject)
    context = {
        "subject": subject,
        "form": form,
        "eligibility": services.eligibility_evaluate(subject, saved),
        "checklist": checklist_rows(subject),
    }
    return render(request, "samples/eligibility_checklist.html", context, status=_status(request))


@login_required
@permission_required("samples.confirm_eligibility", raise_exception=True)
@require_http_methods(["GET", "POST"])
def eligibility_confirm(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(subject_with_checklist(), code=code)
    form = SignForm(_posted(request), initial={"username": request.user.get_username()})
    reasons: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.subject_confirm_eligibility(
                subject=subject, acting_user=request.user, signature=_signature(form, "eligibility_confirmed")
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            reasons = exc.reasons if exc.code == "ineligible" and exc.reasons != [exc.message] else []
        else:
            messages.success(request, f"Eligibility of {subject.code} confirmed and signed; the subject is enrolled.")
            return redirect(subject)
    context = {
        "subject": subject,
        "form": form,
        "refusal_reasons": reasons,
        "eligibility": services.eligibility_evaluate(subject),
        "checklist": checklist_rows(subject),
    }
    return render(request, "samples/eligibility_confirm.html", context, status=_status(request))


def _subject_close(
    request: HttpRequest, code: str, *, step: Callable[..., Subject], title: str, submit: str, done: str
) -> HttpResponse:
    subject = get_object_or_404(Subject, code=code)
    form = ReasonForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            step(subject=subject, acting_user=request.user, reason=form.cleaned_data["reason"])
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Subject {subject.code} {done}.")
            return redirect(subject)
    return _form_page(
        request,
        {"title": f"{title}: {subject.code}", "form": form, "submit": submit, "cancel": subject.get_absolute_url()},
    )


@login_required
@permission_required("samples.confirm_eligibility", raise_exception=True)
@require_http_methods(["GET", "POST"])
def subject_screen_fail(request: HttpRequest, code: str) -> HttpResponse:
    return _subject_close(
        request,
        code,
        step=services.subject_screen_fail,
        title="Screen failure",
        submit="Record screen failure",
        done="is recorded as not eligible",
    )


@login_required
@permission_required("samples.withdraw_subject", raise_exception=True)
@require_http_methods(["GET", "POST"])
def subject_withdraw(request: HttpRequest, code: str) -> HttpResponse:
    return _subject_close(
        request,
        code,
        step=services.subject_withdraw,
        title="Withdraw subject",
        submit="Withdraw subject",
        done="is withdrawn; nothing further is done for this subject",
    )


# --- Aspirates -------------------------------------------------------------------------------


@login_required
@permission_required("samples.add_aspirate", raise_exception=True)
@require_http_methods(["GET", "POST"])
def aspirate_collect(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(Subject, code=code)
    form = AspirateCollectForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            aspirate = services.aspirate_collect(subject=subject, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Aspirate {aspirate.code} registered. Print its label and put it on the tube.")
            return redirect(aspirate)
    return _form_page(
        request,
        {
            "title": f"Register a bone marrow aspirate of {subject.code}",
            "form": form,
            "submit": "Register aspirate",
            "cancel": subject.get_absolute_url(),
        },
    )


@login_required
@permission_required("samples.view_aspirate", raise_exception=True)
@require_GET
def aspirate_detail(request: HttpRequest, code: str) -> HttpResponse:
    aspirate = get_object_or_404(aspirate_for_page(), code=code)
    context: dict[str, Any] = {
        "aspirate": aspirate,
        "deviations": deviations_for(aspirate),
        "content_type_id": ContentType.objects.get_for_model(Aspirate).pk,
    }
    label = item_label(aspirate, LabelKind.ASPIRATE)
    if label is not None:
        context.update(label_item_context(label))
    return render(request, "samples/aspirate_detail.html", context)


@login_required
@permission_required("samples.add_aspirate", raise_exception=True)
@require_http_methods(["GET", "POST"])
def aspirate_dispatch(request: HttpRequest, code: str) -> HttpResponse:
    aspirate = get_object_or_404(Aspirate, code=code)
    form = AspirateDispatchForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.aspirate_dispatch(aspirate=aspirate, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Aspirate {aspirate.code} is on its way to the cleanroom.")
            return redirect(aspirate)
    return _form_page(
        request,
        {
            "title": f"Dispatch aspirate {aspirate.code} to the cleanroom",
            "form": form,
            "submit": "Hand over to the courier",
            "cancel": aspirate.get_absolute_url(),
        },
    )


@login_required
@permission_required("samples.receive_aspirate", raise_exception=True)
@require_http_methods(["GET", "POST"])
def aspirate_receive(request: HttpRequest, code: str) -> HttpResponse:
    aspirate = get_object_or_404(aspirate_for_page(), code=code)
    initial = {"scanned_payload": request.GET.get("payload", "")}
    form = AspirateReceiveForm(_posted(request), initial=initial)
    outside_limits: DomainError | None = None
    if request.method == "POST" and form.is_valid():
        try:
            received = services.aspirate_receive(aspirate=aspirate, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            if exc.code == "outside_limits":
                outside_limits = exc  # shown above the form, so the operator chooses a decision
            else:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Aspirate {received.code}: {received.get_status_display().lower()}.")
            return redirect(received)
    context = {"aspirate": aspirate, "form": form, "outside_limits": outside_limits}
    return render(request, "samples/aspirate_receive.html", context, status=_status(request))


@login_required
@permission_required("samples.receive_aspirate", raise_exception=True)
@require_http_methods(["GET", "POST"])
def receive_scan(request: HttpRequest) -> HttpResponse:
    """The cleanroom's entry point: scan the arriving tube, land on its receipt form."""
    form = ScanForm(_posted(request))
    error = ""
    if request.method == "POST":
        if not form.is_valid():
            error = "Nothing was scanned. Scan the QR code on the tube's label."
        else:
            payload = form.cleaned_data["payload"].strip()
            result = scan_resolve(payload=payload, acting_user=request.user)
            label = result.label
            if label is None:
                error = result.error
            elif label.kind != LabelKind.ASPIRATE:
                error = (
                    f"{label.code} is a {label.get_kind_display().lower()} label, not an aspirate tube. "
                    "Scan the label on the tube you are receiving."
                )
            else:
                url = reverse("samples:aspirate-receive", args=[label.code])
                return redirect(f"{url}?{urlencode({'payload': payload})}")
        form = ScanForm()  # an empty, focused box for the next scan
    return render(request, "samples/receive_scan.html", {"form": form, "error": error}, status=_status(request))


# --- Follow-up -------------------------------------------------------------------------------


@login_required
@permission_required("samples.add_followupsample", raise_exception=True)
@require_http_methods(["GET", "POST"])
def follow_up_sample_collect(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(subject_with_checklist(), code=code)
    form = FollowUpSampleForm(_posted(request), visits=subject.protocol.visits.all())
    if request.method == "POST" and form.is_valid():
        try:
            sample = services.follow_up_sample_collect(subject=subject, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Sample {sample.code} registered. Print its label and put it on the tube.")
            return redirect(sample)
    return _form_page(
        request,
        {
            "title": f"Register a follow-up blood sample of {subject.code}",
            "form": form,
            "submit": "Register sample",
            "cancel": subject.get_absolute_url(),
        },
    )


def _sample_page(request: HttpRequest, sample: FollowUpSample, form: forms.Form | None) -> HttpResponse:
    context: dict[str, Any] = {
        "sample": sample,
        "rows": sample_result_rows(sample),
        "form": form,
        "content_type_id": ContentType.objects.get_for_model(FollowUpSample).pk,
    }
    label = item_label(sample, LabelKind.BLOOD)
    if label is not None:
        context.update(label_item_context(label))
    return render(request, "samples/follow_up_sample.html", context, status=_status(request))


def _results_form(sample: FollowUpSample, data: Any = None) -> AssayResultsForm:
    entered = {r.analyte_id: r.value for r in sample.results.all()}
    return AssayResultsForm(data, analytes=sample.subject.protocol.analytes.all(), entered=entered)


@login_required
@permission_required("samples.view_followupsample", raise_exception=True)
@require_GET
def follow_up_sample_detail(request: HttpRequest, code: str) -> HttpResponse:
    sample = get_object_or_404(follow_up_sample_for_page(), code=code)
    form = _results_form(sample) if request.user.has_perm("samples.add_assayresult") else None
    return _sample_page(request, sample, form)


@login_required
@permission_required("samples.add_assayresult", raise_exception=True)
@require_http_methods(["GET", "POST"])
def follow_up_results(request: HttpRequest, code: str) -> HttpResponse:
    sample = get_object_or_404(follow_up_sample_for_page(), code=code)
    form = _results_form(sample, _posted(request))
    if request.method == "POST" and form.is_valid():
        before = {r.analyte_id: r.value for r in sample.results.all()}
        try:
            # The one place a view opens a transaction: the results of one sample are entered as one
            # step, so a value the service refuses must leave none of the others written.
            with transaction.atomic():
                for analyte, value in form.filled():
                    services.assay_result_record(
                        sample=sample,
                        analyte=analyte,
                        value=value,
                        acting_user=request.user,
                        reason=form.cleaned_data["reason"],
                    )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            changed = [a.name for a, v in form.filled() if before.get(a.pk) != v]
            text = ", ".join(changed) if changed else "no value changed"
            messages.success(request, f"Results of {sample.code} saved: {text}.")
            return redirect(sample)
    return _sample_page(request, sample, form)


@login_required
@permission_required("samples.add_diseaseactivity", raise_exception=True)
@require_http_methods(["GET", "POST"])
def disease_activity_record(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(subject_with_checklist(), code=code)
    form = Das28Form(_posted(request), visits=subject.protocol.visits.all())
    if request.method == "POST" and form.is_valid():
        try:
            record = services.disease_activity_record(subject=subject, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"{record.visit.name}: DAS28-ESR {record.das28_esr} ({record.get_category_display()}) recorded.",
            )
            return redirect(subject)
    return _form_page(
        request,
        {
            "title": f"Disease activity (DAS28-ESR) of {subject.code}",
            "intro": "DAS28-ESR = 0.56·√tender + 0.28·√swollen + 0.70·ln(ESR) + 0.014·VAS; Stroma computes it.",
            "form": form,
            "submit": "Record DAS28",
            "cancel": subject.get_absolute_url(),
        },
    )


# --- The primary endpoint ----------------------------------------------------------------------


@login_required
@permission_required("samples.view_subject", raise_exception=True)
@require_GET
def study_endpoint_page(request: HttpRequest, code: str) -> HttpResponse:
    study = get_object_or_404(Study, code=code)
    report = study_endpoint(study)
    if request.GET.get("format") == "csv":
        response = HttpResponse(endpoint_csv(report), content_type="text/csv; charset=utf-8")
        filename = f"endpoint-{study.code}-{timezone.localdate():%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    context = {
        "report": report,
        "table": list(zip(report.rows, report.table(), strict=True)),
        "absolute": report.absolute.formatted(VALUE_PLACES),
        "relative": report.relative.formatted(PERCENT_PLACES),
        "plot_svg": endpoint_slopegraph(report),
    }
    return render(request, "samples/study_endpoint.html", context)
