"""Thin views over the cross-cutting services: home, labels, custody, signatures and audit trails."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from lims import labels
from lims.audit import audit_csv, audit_entries
from lims.errors import DomainError
from lims.forms import CustodyForm, SignatureForm
from lims.models import Label, ScanAttempt
from lims.selectors import label_item_context
from lims.services import custody_record, require_scanned
from lims.signatures import SIGNABLE, SignatureRequest, record_sign, signatures_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    recent = (
        ScanAttempt.objects.filter(scanned_by_id=request.user.pk).select_related("label").order_by("-scanned_at")[:10]
    )
    return render(request, "lims/home.html", {"recent_scans": recent})


@login_required
@permission_required("lims.view_label", raise_exception=True)
def label_detail(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label.objects.select_related("content_type", "created_by"), code=code)
    return render(request, "lims/label_detail.html", label_item_context(label))


@login_required
@permission_required("lims.view_label", raise_exception=True)
def label_pdf(request: HttpRequest, code: str) -> HttpResponse:
    label = get_object_or_404(Label, code=code)
    pdf = labels.label_sheet_pdf([labels.label_text_for(label)])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="label-{label.code}.pdf"'
    return response


@login_required
@permission_required("lims.view_label", raise_exception=True)
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
    form = CustodyForm(request.POST or None)
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
    form = SignatureForm(request.POST or None, meanings=meanings, initial={"username": request.user.get_username()})
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
