"""List filters: status, study and date ranges for every resource (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet

from lims.models import ContainerCondition, DeviationSource, DeviationStatus, LabelKind, ReminderStatus
from manufacturing.models import (
    BatchStatus,
    DoseStatus,
    EventKind,
    FlaskStatus,
    InfusionStatus,
    LotStatus,
    ProductStatus,
    QcFlag,
    ResultStatus,
)
from samples.models import AspirateStatus, Subject, SubjectStatus


def study(field: str) -> df.CharFilter:
    return df.CharFilter(field_name=field, help_text="Study code, e.g. RA-MSC.")


def code(field: str, what: str) -> df.CharFilter:
    return df.CharFilter(field_name=field, help_text=f"{what} code.")


def after(field: str, *, moment: bool = True) -> df.DateFilter:
    return df.DateFilter(
        field_name=field, lookup_expr="date__gte" if moment else "gte", help_text="On or after this date."
    )


def before(field: str, *, moment: bool = True) -> df.DateFilter:
    return df.DateFilter(
        field_name=field, lookup_expr="date__lte" if moment else "lte", help_text="On or before this date."
    )


def _deviations_of_study(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return queryset.filter(subject_code__in=Subject.objects.filter(study__code=value).values("code"))


def _custody_of_study(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return queryset.filter(label__subject_code__in=Subject.objects.filter(study__code=value).values("code"))


class StudyFilter(df.FilterSet):
    created_after = after("created_at")
    created_before = before("created_at")


class SubjectFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=SubjectStatus.choices)
    study = study("study__code")
    screened_after = after("screening_date", moment=False)
    screened_before = before("screening_date", moment=False)


class AspirateFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=AspirateStatus.choices)
    study = study("subject__study__code")
    subject = code("subject__code", "Subject")
    collected_after = after("collected_at")
    collected_before = before("collected_at")


class BatchFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=BatchStatus.choices)
    study = study("subject__study__code")
    subject = code("subject__code", "Subject")
    started_after = after("started_at")
    started_before = before("started_at")


class FlaskFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=FlaskStatus.choices)
    study = study("batch__subject__study__code")
    batch = code("batch__lot_number", "Batch lot")
    seeded_after = after("seeded_at")
    seeded_before = before("seeded_at")


class CultureEventFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=EventKind.choices)
    study = study("flask__batch__subject__study__code")
    batch = code("flask__batch__lot_number", "Batch lot")
    flask = code("flask__code", "Flask")
    occurred_after = after("occurred_at")
    occurred_before = before("occurred_at")


class ReagentLotFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=LotStatus.choices)
    reagent = df.CharFilter(field_name="reagent__name", help_text="Reagent name, e.g. MEM-alpha.")
    expires_after = after("expiry_date", moment=False)
    expires_before = before("expiry_date", moment=False)
    received_after = after("received_at")
    received_before = before("received_at")


class QcResultFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=ResultStatus.choices)
    flag = df.ChoiceFilter(choices=QcFlag.choices)
    study = study("batch__subject__study__code")
    batch = code("batch__lot_number", "Batch lot")
    tested_after = after("tested_at")
    tested_before = before("tested_at")


class DeviationFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=DeviationStatus.choices)
    source = df.ChoiceFilter(choices=DeviationSource.choices)
    study = df.CharFilter(method=_deviations_of_study, help_text="Study code, e.g. RA-MSC.")
    subject = code("subject_code", "Subject")
    opened_after = after("opened_at")
    opened_before = before("opened_at")


class ProductFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=ProductStatus.choices)
    study = study("batch__subject__study__code")
    subject = code("batch__subject__code", "Subject")
    formulated_after = after("formulated_at")
    formulated_before = before("formulated_at")


class DoseFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=DoseStatus.choices)
    study = study("subject__study__code")
    product = code("product__code", "Product")
    calculated_after = after("calculated_at")
    calculated_before = before("calculated_at")


class CustodyEventFilter(df.FilterSet):
    container_condition = df.ChoiceFilter(choices=ContainerCondition.choices)
    kind = df.ChoiceFilter(field_name="label__kind", choices=LabelKind.choices)
    label = code("label__code", "Label")
    subject = code("label__subject_code", "Subject")
    study = df.CharFilter(method=_custody_of_study, help_text="Study code, e.g. RA-MSC.")
    occurred_after = after("occurred_at")
    occurred_before = before("occurred_at")


class InfusionFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=InfusionStatus.choices)
    study = study("subject__study__code")
    subject = code("subject__code", "Subject")
    started_after = after("started_at")
    started_before = before("started_at")


class FollowUpResultFilter(df.FilterSet):
    study = study("sample__subject__study__code")
    subject = code("sample__subject__code", "Subject")
    analyte = df.CharFilter(field_name="analyte__name", help_text="Analyte name.")
    visit_month = df.NumberFilter(field_name="sample__visit__month", min_value=0, max_value=600)
    entered_after = after("entered_at")
    entered_before = before("entered_at")


class ReminderFilter(df.FilterSet):
    status = df.ChoiceFilter(choices=ReminderStatus.choices)
    kind = df.CharFilter(field_name="kind")
    due_after = after("due_at")
    due_before = before("due_at")
