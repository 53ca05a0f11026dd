"""The project's URLs, unchanged, plus the bare floor view the benchmarks compare against."""

from __future__ import annotations

from django.urls import path

from benchmarks import views
from lims.urls import urlpatterns as project_urlpatterns

BARE_PREFIX = "bench/bare/"

urlpatterns = [
    path(f"{BARE_PREFIX}<str:code>/", views.bare_flask, name="bench-bare"),
    *project_urlpatterns,
]
