from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


class _ReminderBadge:
    """The header badge's text: counted only when a page shows it, once per request (one query)."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.value: str | None = None

    def __call__(self) -> str:
        if self.value is None:
            from lims.reminders import badge_count, badge_text

            self.value = badge_text(badge_count(getattr(self.request, "user", None)))
        return self.value


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "site_time_zone": settings.TIME_ZONE,
        "idle_timeout_minutes": settings.STROMA_IDLE_TIMEOUT_MINUTES,
        "reminder_badge": _ReminderBadge(request),
    }
