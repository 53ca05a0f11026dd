from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    return {"site_time_zone": settings.TIME_ZONE, "idle_timeout_minutes": settings.STROMA_IDLE_TIMEOUT_MINUTES}
