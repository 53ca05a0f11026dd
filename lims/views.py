"""Thin views over the cross-cutting services: home, labels, custody, signatures and audit trails."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from lims import labels
from lims.audit import audit_csv, audit_entries
from lims.errors import DomainError
from lims.forms import CustodyForm, SignatureForm
from lims.models import Label, Reminder, ScanAttempt
from lims.reminders import (
    SNOOZE_CHOICES_MINUTES,
    dashboard_for,
    notification_preference_set,
    reminder_acknowledge,
    reminder_snooze,
    wants_daily_digest,
)
from lims.selectors import label_item_context, screen_qr_svg
from lims.services import custody_record, require_scanned
from lims.signatures import SIGNABLE, SignatureRequest, record_sign, signatures_for

# The browser keeps a label's symbol this long: its URL changes with the signed payload (screen_qr_url).
QR_MAX_AGE_SECONDS = 365 * 24 * 3600


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST, even an empty one: ``request.POST or None`` leaves an empty POST unbound,
    refused with a 400 that says nothing."""
    return request.POST if request.method == "POST" else None


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The operator's day: overdue, due now and due later today, then the person's recent scans."""
    recent = (
        ScanAttempt.objects.filter(scanned_by_id=request.user.pk).select_related("label").order_by("-scanned_at")[:10]
    )
    context = {
        "recent_scans": recent,
        "board": dashboard_for(request.user),
        "snooze_choices": SNOOZE_CHOICES_MINUTES,
        "grace_hours": settings.STROMA_REMINDER_GRACE_HOURS,
    }
    return render(request, "lims/home.html", context)


@login_required
@permission_required("lims.view_label", raise_exception=True)
@require_GET
def label_detail(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label.objects.select_related("content_type", "created_by"), code=code)
    return render(request, "lims/label_detail.html", label_item_context(label))


@login_required
@permission_required("lims.view_label", raise_exception=True)
@require_GET
def label_qr(request: HttpRequest, code: str) -> HttpResponse:
    """A label's QR symbol for its item's page, fetched by the browser beside the page.

    Only an existing label is drawn: this must never sign a code that nobody labelled. The URL carries
    the payload's version (``?v=``), so the browser may keep the symbol for a year; a new label key
    gives new URLs. ``private``: it is shown to a signed-in person and kept by their browser only.
    """
    label = get_object_or_404(Label.objects.only("id", "code"), code=code)
    response = HttpResponse(screen_qr_svg(labels.label_payload(label.code)), content_type="image/svg+xml")
    response["Cache-Control"] = f"private, max-age={QR_MAX_AGE_SECONDS}, immutable"
    return response


@login_required
@permission_required("lims.view_label", raise_exception=True)
@require_GET
def label_pdf(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label, code=code)
    pdf = labels.label_sheet_pdf([labels.label_text_for(label)])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="label-{label.code}.pdf"'
    return response


@login_required
@permission_required("lims.view_label", raise_exception=True)
@require_GET
def label_zpl(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label, code=code)
    response = HttpResponse(labels.label_zpl(labels.label_text_for(label)), content_type="text/plain; charset=ascii")
    response["Content-Disposition"] = f'attachment; filename="label-{label.code}.zpl"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def custody_new(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label, code=code)
    if not request.user.has_perm("lims.add_custodyevent"):
        raise PermissionDenied("Your role does not allow you to record a custody hand-over.")
    form = CustodyForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            require_scanned(
                payload=form.cleaned_data["scanned_payload"], expected_code=label.code, acting_user=request.user
            )
            custody_record(
                label=label,
                acting_user=request.user,
                **{k: v for k, v in form.cleaned_data.items() if k != "scanned_payload"},
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Hand-over of {label.code} recorded.")
            return redirect(label.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "lims/custody_form.html", {"form": form, "label": label}, status=status)


def _record_for(content_type_id: int, object_id: int) -> models.Model:
    content_type = get_object_or_404(ContentType, pk=content_type_id)
    model = content_type.model_class()
    if model is None:
        raise Http404("No such record type.")
    return get_object_or_404(model._default_manager, pk=object_id)


@login_required
@require_http_methods(["GET", "POST"])
def record_sign_view(request: HttpRequest, content_type_id: int, object_id: int) -> HttpResponse:
    record = _record_for(content_type_id, object_id)
    key = record._meta.label_lower
    if key not in SIGNABLE:
        raise Http404("This record is not signed from this page.")
    meanings, permission = SIGNABLE[key]
    if not request.user.has_perm(permission):
        raise PermissionDenied("Your role does not allow you to sign this record.")
    form = SignatureForm(_posted(request), meanings=meanings, initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        signature_request = SignatureRequest(**form.cleaned_data)
        try:
            record_sign(
                record=record,
                acting_user=request.user,
                request=signature_request,  # type: ignore[arg-type]
                allowed_meanings=meanings,
                required_permission=permission,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Signed.")
            return redirect(request.GET.get("next") or "home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "lims/sign.html", {"form": form, "record": record, "signatures": signatures_for(record)}, status=status
    )  # type: ignore[arg-type]


@login_required
@permission_required("lims.view_audit_trail", raise_exception=True)
@require_GET
def audit_trail(request: HttpRequest, content_type_id: int, object_id: int) -> HttpResponse:
    record = _record_for(content_type_id, object_id)
    entries = audit_entries(record)  # type: ignore[arg-type]
    if request.GET.get("format") == "csv":
        response = HttpResponse(audit_csv(entries), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{content_type_id}-{object_id}-{stamp}.csv"'
        return response
    return render(
        request, "lims/audit_trail.html", {"record": record, "entries": entries, "content_type_id": content_type_id}
    )


# --- Reminders: inbox, acknowledge, snooze, e-mail preference (lims.reminders) -----------------------


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = ""
    return redirect(target or "reminder-inbox")


@login_required
@require_GET
def reminder_inbox(request: HttpRequest) -> HttpResponse:
    context = {
        "board": dashboard_for(request.user),
        "snooze_choices": SNOOZE_CHOICES_MINUTES,
        "daily_digest": wants_daily_digest(request.user),
        "digest_hour": settings.STROMA_DIGEST_HOUR,
        "grace_hours": settings.STROMA_REMINDER_GRACE_HOURS,
    }
    return render(request, "lims/inbox.html", context)


@login_required
@require_http_methods(["POST"])
def reminder_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    reminder = get_object_or_404(Reminder, pk=pk)
    try:
        reminder_acknowledge(reminder=reminder, acting_user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Acknowledged: {reminder.title}.")
    return _back(request)


@login_required
@require_http_methods(["POST"])
def reminder_snooze_view(request: HttpRequest, pk: int) -> HttpResponse:
    reminder = get_object_or_404(Reminder, pk=pk)
    try:
        minutes = int(request.POST.get("minutes", "0"))
    except ValueError:
        minutes = 0
    try:
        snoozed = reminder_snooze(
            reminder=reminder, acting_user=request.user, minutes=minutes, reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        until = timezone.localtime(snoozed.snoozed_until) if snoozed.snoozed_until else timezone.localtime()
        messages.success(request, f"Snoozed until {until:%H:%M on %Y-%m-%d}: {reminder.title}.")
    return _back(request)


@login_required
@require_http_methods(["POST"])
def reminder_preferences(request: HttpRequest) -> HttpResponse:
    digest = request.POST.get("daily_digest") == "on"
    try:
        notification_preference_set(acting_user=request.user, daily_digest=digest)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Reminder e-mail: one daily digest." if digest else "Reminder e-mail: each reminder as it falls due.",
        )
    return _back(request)
