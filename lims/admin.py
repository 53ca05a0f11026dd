"""The QA workplace: the Django admin, read-only for GMP records (changes go through services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from lims.models import (
    CustodyEvent,
    Label,
    Notification,
    NotificationPreference,
    Reminder,
    ScanAttempt,
    Signature,
    SignatureFailure,
    User,
)

# Nothing in Stroma is deleted: records are corrected, voided or superseded with a reason.
admin.site.disable_action("delete_selected")


class ReadOnlyAuditedAdmin(SimpleHistoryAdmin):
    """GMP records are viewed here and changed only through their services, with a reason."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class StromaUserAdmin(UserAdmin, SimpleHistoryAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: signatures and history must keep their signer


admin.site.unregister(Group)


@admin.register(Group)
class StromaGroupAdmin(GroupAdmin, SimpleHistoryAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Label)
class LabelAdmin(ReadOnlyAuditedAdmin):
    list_display = ("code", "kind", "subject_code", "created_at", "created_by")
    list_filter = ("kind",)
    search_fields = ("code", "subject_code")
    list_select_related = ("created_by",)


@admin.register(ScanAttempt)
class ScanAttemptAdmin(ReadOnlyAuditedAdmin):
    list_display = ("scanned_at", "outcome", "payload", "label", "scanned_by")
    list_filter = ("outcome",)
    list_select_related = ("label", "scanned_by")
    date_hierarchy = "scanned_at"


@admin.register(CustodyEvent)
class CustodyEventAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "occurred_at",
        "label",
        "handed_over_by",
        "received_by",
        "location",
        "temperature_c",
        "container_condition",
    )
    list_select_related = ("label",)


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAuditedAdmin):
    list_display = ("signed_at", "printed_name", "meaning", "content_type", "object_id")
    list_select_related = ("content_type",)


@admin.register(SignatureFailure)
class SignatureFailureAdmin(ReadOnlyAuditedAdmin):
    list_display = ("failed_at", "username_entered", "why", "attempted_by")
    list_select_related = ("attempted_by",)


# --- Reminders: read-only here; acknowledged and snoozed through lims.reminders ----------------------


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAuditedAdmin):
    list_display = ("due_at", "kind", "item_code", "title", "audience_role", "status", "escalated_at")
    list_filter = ("status", "kind", "audience_role")
    search_fields = ("item_code", "subject_code", "title")
    date_hierarchy = "due_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAuditedAdmin):
    list_display = ("created_at", "reminder", "recipient", "channel", "sent_at", "message_id")
    list_filter = ("channel",)
    list_select_related = ("reminder", "recipient")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyAuditedAdmin):
    list_display = ("user", "daily_digest")
    list_select_related = ("user",)
