"""The Celery app. The beat schedule is static and in UTC; tasks take ids and are enqueued on commit."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery
from celery.schedules import crontab

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
    hour, minute = site_time_in_utc(SIGNATURE_CHECK_SITE_TIME, settings.TIME_ZONE)
    sender.add_periodic_task(
        crontab(hour=hour, minute=minute),
        sender.signature("lims.tasks.signatures_verify_task"),
        name="signatures-verify",
    )


# The nightly signature check (lims.integrity) runs when the lab is quiet, in site time.
SIGNATURE_CHECK_SITE_TIME = time(2, 30)


def site_time_in_utc(at: time, zone: str, *, on: date | None = None) -> tuple[int, int]:
    """The UTC hour and minute of a site-time moment, fixed when beat starts.

    The schedule stays in UTC like every other entry; a daylight-saving change in the site's zone
    moves the check by an hour until beat restarts, and it still runs once a night.
    """
    local = datetime.combine(on or date.today(), at, tzinfo=ZoneInfo(zone))
    moment = local.astimezone(UTC)
    return moment.hour, moment.minute
