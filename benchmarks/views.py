"""Django's floor: the cheapest view that still reads the scanned flask, by its unique (indexed) code."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from manufacturing.models import Flask


def bare_flask(request: HttpRequest, code: str) -> HttpResponse:
    flask = Flask.objects.only("id", "code").get(code=code)
    return HttpResponse(f"{flask.pk} {flask.code}\n", content_type="text/plain; charset=utf-8")
