"""Read-only resources: every record a reviewer, a device or an integration needs to read."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view

from api import examples as ex
from api import filters
from api.authentication import token_role
from api.serializers import read
from api.views.base import ReadViewSet
from lims.models import CustodyEvent, Deviation, Reminder
from lims.reminders import LIVE
from lims.roles import LAB_MANAGER
from manufacturing.models import CultureEvent, Infusion, QcResult
from samples.models import AssayResult, Study, Subject


def documented(tag: str, example: dict[str, Any]) -> Any:
    return extend_schema_view(
        list=extend_schema(tags=[tag], examples=ex.read(f"A page of {tag.lower()}", example)),
        retrieve=extend_schema(tags=[tag], examples=ex.read(f"One of the {tag.lower()}", example)),
    )


def reading(permission: str, doing: str) -> dict[str, tuple[str | None, str]]:
    return {"list": (permission, doing), "retrieve": (permission, doing)}


@documented("Studies", ex.STUDY)
class StudyViewSet(ReadViewSet):
    queryset = Study.objects.order_by("code")
    serializer_class = read.StudySerializer
    lookup_field = "code"
    filterset_class = filters.StudyFilter
    ordering_fields = ("code", "created_at")
    what = "study"
    rules = reading("samples.view_study", "view studies")


@documented("Subjects", ex.SUBJECT)
class SubjectViewSet(ReadViewSet):
    queryset = Subject.objects.select_related("study", "protocol").order_by("study__code", "sequence")
    serializer_class = read.SubjectSerializer
    lookup_field = "code"
    filterset_class = filters.SubjectFilter
    ordering_fields = ("code", "screening_date", "registered_at", "status")
    what = "subject"
    rules = reading("samples.view_subject", "view subjects")


@documented("Culture events", ex.EVENT)
class CultureEventViewSet(ReadViewSet):
    queryset = (
        CultureEvent.objects.select_related("flask__batch", "recorded_by")
        .prefetch_related("reagent_uses__lot")
        .order_by("-occurred_at", "-id")
    )
    serializer_class = read.CultureEventSerializer
    filterset_class = filters.CultureEventFilter
    ordering_fields = ("occurred_at", "recorded_at", "id")
    what = "culture event"
    rules = reading("manufacturing.view_cultureevent", "view culture events")


@documented("QC results", ex.QC_RESULT)
class QcResultViewSet(ReadViewSet):
    queryset = QcResult.objects.select_related("batch", "criterion", "entered_by", "sample", "investigation").order_by(
        "-entered_at", "-id"
    )
    serializer_class = read.QcResultSerializer
    filterset_class = filters.QcResultFilter
    ordering_fields = ("entered_at", "tested_at", "id")
    what = "QC result"
    rules = reading("manufacturing.view_qcresult", "view QC results")


@documented("Deviations", ex.DEVIATION)
class DeviationViewSet(ReadViewSet):
    queryset = Deviation.objects.select_related("content_type", "opened_by").order_by("-opened_at", "-id")
    serializer_class = read.DeviationSerializer
    lookup_field = "code"
    filterset_class = filters.DeviationFilter
    ordering_fields = ("opened_at", "code")
    what = "deviation"
    rules = reading("lims.view_deviation", "view deviations")


@documented("Custody events", ex.CUSTODY)
class CustodyEventViewSet(ReadViewSet):
    queryset = CustodyEvent.objects.select_related("label", "recorded_by").order_by("-occurred_at", "-id")
    serializer_class = read.CustodyEventSerializer
    filterset_class = filters.CustodyEventFilter
    ordering_fields = ("occurred_at", "recorded_at", "id")
    what = "custody event"
    rules = reading("lims.view_label", "view custody records")


@documented("Infusions", ex.INFUSION)
class InfusionViewSet(ReadViewSet):
    queryset = Infusion.objects.select_related("product", "subject", "administered_by", "witnessed_by").order_by("-id")
    serializer_class = read.InfusionSerializer
    filterset_class = filters.InfusionFilter
    ordering_fields = ("started_at", "id")
    what = "infusion"
    rules = reading("manufacturing.view_infusion", "view infusions")


@documented("Follow-up results", ex.FOLLOW_UP_RESULT)
class FollowUpResultViewSet(ReadViewSet):
    queryset = AssayResult.objects.select_related(
        "sample__subject__study", "sample__visit", "analyte", "entered_by"
    ).order_by("-entered_at", "-id")
    serializer_class = read.FollowUpResultSerializer
    filterset_class = filters.FollowUpResultFilter
    ordering_fields = ("entered_at", "id")
    what = "follow-up result"
    rules = reading("samples.view_assayresult", "view follow-up results")


@documented("Reminders", ex.REMINDER)
class ReminderViewSet(ReadViewSet):
    """The person's inbox as on the home page: their roles' live reminders (a token: its role only)."""

    serializer_class = read.ReminderSerializer
    filterset_class = filters.ReminderFilter
    ordering_fields = ("due_at", "id")
    what = "reminder"
    rules = reading("lims.view_reminder", "view reminders")

    def get_queryset(self) -> QuerySet[Reminder]:
        user = self.request.user
        if getattr(self, "swagger_fake_view", False):
            return Reminder.objects.none()
        roles = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        scope = token_role(user)
        if scope is not None:
            roles &= {scope}
        visible = Q(audience_role__in=roles)
        if LAB_MANAGER in roles:
            visible |= Q(escalated_at__isnull=False)
        return Reminder.objects.filter(visible, status__in=LIVE).order_by("due_at", "id")
