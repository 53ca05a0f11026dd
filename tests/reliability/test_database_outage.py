"""PostgreSQL restarted in the middle of a feed: a clear page, nothing half-saved, and the next
feed goes through without anyone touching the site.

The request is held inside its transaction (the culture event already inserted, its history row
waiting behind a table lock taken from another connection) while the server restarts, so the
restart lands mid-request, after a partial write, every time.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from manufacturing.models import CultureEvent, EventKind
from tests.integration.conftest import wait_for, worker_database_url
from tests.manufacturing.helpers import accepted_aspirate, released_lot, seeded_flasks, started_batch
from tests.manufacturing.test_pages import feed_data

pytestmark = [pytest.mark.postgres, pytest.mark.requirement("ANNEX11.7")]


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _restart_postgresql() -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "restart", "--", "-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _waiting_on_a_lock(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.skipif(not Path("/etc/postgresql").is_dir(), reason="needs the local PostgreSQL cluster to restart")
def test_a_restart_mid_request_shows_a_clear_page_saves_nothing_and_recovers(
    transactional_db, study, clinician, operator, qa_officer, password
):
    media = [
        released_lot("MEM-alpha", operator, qa_officer),
        released_lot("Human platelet lysate", operator, qa_officer),
    ]
    [flask] = seeded_flasks(
        started_batch(accepted_aspirate(study, clinician, operator, password), operator), operator, media, count=1
    )
    feeds_before = CultureEvent.objects.filter(flask=flask, kind=EventKind.FEED).count()
    history_before = CultureEvent.history.count()
    dsn = worker_database_url()
    url = reverse("manufacturing:flask-feed", args=[flask.code])

    client = Client()
    client.force_login(operator)
    # One thread for both requests: the second must reuse the thread whose connection broke.
    requests = ThreadPoolExecutor(max_workers=1)
    blocker = psycopg.connect(dsn)
    blocker.execute("LOCK TABLE manufacturing_historicalcultureevent IN EXCLUSIVE MODE")
    started = time.monotonic()
    try:
        during = requests.submit(client.post, url, feed_data(media))
        wait_for(lambda: _waiting_on_a_lock(dsn), timeout=30, what="the feed to wait inside its transaction")
        _restart_postgresql()
        response = during.result(timeout=60)
    finally:
        with contextlib.suppress(psycopg.Error):
            blocker.close()
    outage = time.monotonic() - started
    connection.close()  # the test's own connection died with the server, like every other

    page = response.content.decode()
    assert response.status_code == 503
    assert "nothing of this step was saved" in page
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.FEED).count() == feeds_before
    assert CultureEvent.history.count() == history_before

    after = requests.submit(client.post, url, feed_data(media)).result(timeout=60)
    requests.submit(connections.close_all).result(timeout=30)  # the test client leaves it open
    requests.shutdown()
    assert after.status_code == 302
    assert CultureEvent.objects.filter(flask=flask, kind=EventKind.FEED).count() == feeds_before + 1
    assert CultureEvent.history.count() == history_before + 1
    print(
        f"RELIABILITY database-outage status={response.status_code} partial_writes=0 "
        f"restart_seconds={outage:.1f} next_request={after.status_code}"
    )
    connections.close_all()
