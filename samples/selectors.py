"""Reads shaped for the samples pages."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from lims.models import Label, LabelKind
from samples.models import Subject


def subjects_for_list() -> QuerySet[Subject]:
    return Subject.objects.select_related("study").order_by("study__code", "sequence")


def subject_wristband(subject: Subject) -> Label | None:
    return (
        Label.objects.filter(
            content_type=ContentType.objects.get_for_model(Subject), object_id=subject.pk, kind=LabelKind.WRISTBAND
        )
        .select_related("created_by")
        .first()
    )
