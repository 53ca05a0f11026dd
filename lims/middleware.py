"""When the database drops in the middle of a request, say so plainly and keep nothing half-done.

A connection lost mid-request (a restart, a fail-over, a network cut) rolls back the open
transaction in PostgreSQL, so nothing of the step was saved. The user gets a page that says
exactly that, with HTTP 503, instead of the generic server error; the broken connection is
closed here so that the next request opens a fresh one without anyone restarting the site.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger("stroma.database")

UNAVAILABLE = (
    "The database could not be reached, so nothing of this step was saved. "
    "Wait a moment and send it again; if this keeps happening, call the system administrator."
)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": UNAVAILABLE, "code": "database_unavailable"}, status=503)
        else:
            # A page of its own: base.html would ask the database for the user and the reminders.
            response = HttpResponse(render_to_string("database_unavailable.html", {"message": UNAVAILABLE}), status=503)
        response["Retry-After"] = "30"
        return response
