"""The Celery app. The beat schedule is static and in UTC; tasks take ids and are enqueued on commit."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lims.settings")

app = Celery("lims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Periodic work lives here, in UTC, so that exactly one beat process owns it and a
# daylight-saving change in the site's zone cannot fire a task twice. Reminders are one sweep
# over the database (docs/reminders.md): no task is scheduled days ahead with an ETA, and a
# sweep message that waited longer than one interval is dropped, because the next one does the same.
@app.on_after_configure.connect
def _beat_schedule(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    every = float(settings.STROMA_SWEEP_SECONDS or settings.STROMA_SWEEP_MINUTES * 60)
    sender.add_periodic_task(
        every, sender.signature("lims.tasks.reminders_sweep_task"), name="reminders-sweep", expires=every
    )
