from django.contrib import admin

from lims.admin import ReadOnlyAuditedAdmin
from samples.models import Study, Subject


@admin.register(Study)
class StudyAdmin(ReadOnlyAuditedAdmin):
    list_display = ("code", "registry_id", "phase", "sponsor", "planned_enrolment")


@admin.register(Subject)
class SubjectAdmin(ReadOnlyAuditedAdmin):
    list_display = ("code", "study", "status", "screening_date")
    list_filter = ("study", "status")
    list_select_related = ("study",)
