"""The Celery app. The beat schedule is static and in UTC; tasks take ids and are enqueued on commit."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lims.settings")

app = Celery("lims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work lives here, in UTC, so that exactly one beat process owns it and a
# daylight-saving change in the site's zone cannot fire a task twice.
app.conf.beat_schedule = {}
