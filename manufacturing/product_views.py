"""Product pages: formulation, dose by weight, custody to the ward, bedside check, infusion record.

Thin adapters over ``manufacturing.services.infusion``: a GET shows the page, a POST calls one
service. A refusal (``DomainError``) is shown on the page with HTTP 400 and nothing is written,
except the bedside hard stop, which the service records for QA before refusing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from lims.errors import DomainError
from manufacturing import product_forms
from manufacturing.models import PRODUCT_TRANSITIONS, Batch, DoseCalculation, FinalProduct, Infusion, ProductStatus
from manufacturing.plots import timeline_svg
from manufacturing.services import infusion as services
from manufacturing.timeline import subject_timeline as timeline_events
from samples.models import Subject


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _form_page(
    request: HttpRequest, form: forms.Form, context: dict[str, Any], error: str = "", template: str = "form.html"
) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    return render(
        request, f"manufacturing/product/{template}", {"form": form, "error": error, **context}, status=status
    )


def _product(code: str) -> FinalProduct:
    return get_object_or_404(FinalProduct.objects.select_related("batch__subject"), code=code)


@login_required
@permission_required("manufacturing.view_finalproduct", raise_exception=True)
@require_GET
def detail(request: HttpRequest, code: str) -> HttpResponse:
    product = _product(code)
    return render(
        request,
        "manufacturing/product/detail.html",
        {
            "product": product,
            "concentration": product.total_viable_cells / product.volume_ml / 1_000_000,
            "expired": product.expires_at <= timezone.now(),
            "doses": product.doses.select_related("calculated_by", "verified_by").order_by("-calculated_at"),
            "infusion": Infusion.objects.filter(product=product).first(),
            "disposable": {s for s, targets in PRODUCT_TRANSITIONS.items() if ProductStatus.DESTROYED in targets},
        },
    )


@login_required
@permission_required("manufacturing.add_finalproduct", raise_exception=True)
@require_http_methods(["GET", "POST"])
def formulate(request: HttpRequest, lot_number: str) -> HttpResponse:
    batch = get_object_or_404(Batch, lot_number=lot_number)
    form = product_forms.FormulateForm(_posted(request))
    context = {"heading": f"Formulate the product of batch {batch.lot_number}", "submit": "Formulate"}
    if form.is_valid():
        try:
            product = services.product_formulate(
                batch=batch,
                acting_user=request.user,
                total_viable_cells=form.cells(),
                volume_ml=form.cleaned_data["volume_ml"],
            )
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, f"Product {product.code} formulated.")
        return redirect("product:detail", code=product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.add_dosecalculation", raise_exception=True)
@require_http_methods(["GET", "POST"])
def dose(request: HttpRequest, code: str) -> HttpResponse:
    product = _product(code)
    form = product_forms.DoseForm(_posted(request), initial={"weight_measured_on": timezone.localdate()})
    context = {"heading": f"Dose of {product.code} by weight", "submit": "Calculate", "product": product}
    if form.is_valid():
        try:
            services.dose_calculate(product=product, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, "Dose calculated. A second clinician must verify it.")
        return redirect("product:detail", code=product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.verify_dose", raise_exception=True)
@require_http_methods(["GET", "POST"])
def dose_verify(request: HttpRequest, pk: int) -> HttpResponse:
    calculation = get_object_or_404(DoseCalculation.objects.select_related("product"), pk=pk)
    form = product_forms.SignForm(_posted(request))
    context = {
        "heading": f"Verify the dose of {calculation.product.code}",
        "submit": "Sign: verified",
        "product": calculation.product,
        "dose": calculation,
    }
    if form.is_valid():
        try:
            services.dose_verify(dose=calculation, acting_user=request.user, signature=form.signature("verified"))
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, "Dose verified.")
        return redirect("product:detail", code=calculation.product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.issue_product", raise_exception=True)
@require_http_methods(["GET", "POST"])
def issue(request: HttpRequest, code: str) -> HttpResponse:
    product = _product(code)
    form = product_forms.IssueForm(_posted(request))
    context = {"heading": f"Issue {product.code} to the courier", "submit": "Issue", "product": product}
    if form.is_valid():
        try:
            services.product_issue(product=product, acting_user=request.user, handover=form.handover())
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, f"{product.code} issued to {form.cleaned_data['courier']}.")
        return redirect("product:detail", code=product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.receive_product", raise_exception=True)
@require_http_methods(["GET", "POST"])
def receive(request: HttpRequest, code: str) -> HttpResponse:
    product = _product(code)
    form = product_forms.ReceiveForm(_posted(request))
    context = {"heading": f"Receive {product.code} at the ward", "submit": "Receive", "product": product}
    if form.is_valid():
        try:
            services.product_receive_at_ward(
                product=product,
                acting_user=request.user,
                scanned_payload=form.cleaned_data["scanned"],
                handover=form.handover(),
                ward=form.cleaned_data["ward"],
            )
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, f"{product.code} received at the ward.")
        return redirect("product:detail", code=product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.issue_product", raise_exception=True)
@require_http_methods(["GET", "POST"])
def dispose(request: HttpRequest, code: str) -> HttpResponse:
    product = _product(code)
    form = product_forms.DisposeForm(_posted(request))
    context = {"heading": f"Return or destroy {product.code}", "submit": "Record the disposition", "product": product}
    if form.is_valid():
        try:
            disposed = services.product_dispose(product=product, acting_user=request.user, **form.cleaned_data)
        except DomainError as exc:
            return _form_page(request, form, context, exc.message)
        messages.success(request, f"{disposed.code} recorded as {disposed.get_status_display().lower()}.")
        return redirect("product:detail", code=product.code)
    return _form_page(request, form, context)


@login_required
@permission_required("manufacturing.add_infusion", raise_exception=True)
@require_http_methods(["GET", "POST"])
def bedside(request: HttpRequest) -> HttpResponse:
    form = product_forms.BedsideForm(_posted(request))
    if form.is_valid():
        try:
            infusion = services.bedside_verify(
                wristband_payload=form.cleaned_data["wristband"],
                bag_payload=form.cleaned_data["bag"],
                acting_user=request.user,
                second_clinician=form.witness(),
            )
        except DomainError as exc:
            if exc.code == "hard_stop":
                return render(request, "manufacturing/product/hard_stop.html", {"reasons": exc.reasons}, status=400)
            return _form_page(request, form, {}, exc.message, template="bedside.html")
        messages.success(request, "Bedside check passed: the two clinicians may infuse.")
        return redirect("product:infusion", pk=infusion.pk)
    return _form_page(request, form, {}, template="bedside.html")


@login_required
@permission_required("manufacturing.view_infusion", raise_exception=True)
@require_http_methods(["GET", "POST"])
def infusion(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Infusion.objects.select_related("product", "subject", "dose"), pk=pk)
    if request.method == "POST" and not request.user.has_perm("manufacturing.add_infusion"):
        raise PermissionDenied
    form = product_forms.InfusionForm(_posted(request))
    context = {"infusion": record, "product": record.product}
    if form.is_valid():
        administered, witnessed = form.signatures(request.user.get_username())
        try:
            services.infusion_complete(
                infusion=record,
                acting_user=request.user,
                record=form.record(),
                administered=administered,
                witnessed=witnessed,
            )
        except DomainError as exc:
            return _form_page(request, form, context, exc.message, template="infusion.html")
        messages.success(request, "Infusion recorded.")
        return redirect("product:detail", code=record.product.code)
    return _form_page(request, form, context, template="infusion.html")


@login_required
@permission_required("samples.view_subject", raise_exception=True)
@require_GET
def subject_timeline(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(Subject.objects.select_related("study"), code=code)
    events = timeline_events(subject)
    return render(
        request,
        "manufacturing/product/timeline.html",
        {
            "subject": subject,
            "events": events,
            "plot": timeline_svg(events, title=f"Subject {subject.code}: from screening to follow-up"),
        },
    )
