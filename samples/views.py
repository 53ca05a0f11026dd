"""Clinic-side pages for studies and subjects."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from lims.selectors import label_item_context
from samples.models import Subject
from samples.selectors import subject_wristband, subjects_for_list


@login_required
@permission_required("samples.view_subject", raise_exception=True)
def subject_list(request: HttpRequest) -> HttpResponse:
    return render(request, "samples/subject_list.html", {"subjects": subjects_for_list()})


@login_required
@permission_required("samples.view_subject", raise_exception=True)
def subject_detail(request: HttpRequest, code: str) -> HttpResponse:
    subject = get_object_or_404(Subject.objects.select_related("study", "registered_by"), code=code)
    context: dict[str, object] = {"subject": subject, "content_type_id": ContentType.objects.get_for_model(Subject).pk}
    wristband = subject_wristband(subject)
    if wristband is not None:
        context.update(label_item_context(wristband))
    return render(request, "samples/subject_detail.html", context)
