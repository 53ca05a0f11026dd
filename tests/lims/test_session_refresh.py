"""The idle timeout: every request keeps the session alive, but its expiry is written at most once a minute."""

from __future__ import annotations

import datetime as dt

from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone


def _expiry(client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_a_request_within_a_minute_of_the_last_refresh_writes_nothing(client, operator, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(operator)
    client.get(reverse("home"))
    first = _expiry(client)
    time_machine.shift(dt.timedelta(seconds=30))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("home")).status_code == 200
    assert not [q for q in captured.captured_queries if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]]
    assert _expiry(client) == first


def test_a_request_a_minute_later_moves_the_idle_timeout_on(client, operator, time_machine, settings):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(operator)
    client.get(reverse("home"))
    time_machine.shift(dt.timedelta(seconds=61))
    client.get(reverse("home"))
    assert _expiry(client) == timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)


def test_the_session_ends_after_the_idle_timeout_without_a_request(client, operator, time_machine, settings):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(operator)
    client.get(reverse("home"))
    for _ in range(20):  # active for 20 minutes, a request a minute: still logged in
        time_machine.shift(dt.timedelta(seconds=59))
        assert client.get(reverse("home")).status_code == 200
    time_machine.shift(dt.timedelta(seconds=settings.SESSION_COOKIE_AGE))
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_changed_session_is_saved_at_once(client, operator, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(operator)
    client.get(reverse("home"))
    session = client.session
    session["tablet"] = "hood 2"
    session.save()
    time_machine.shift(dt.timedelta(seconds=5))
    # a message is stored in the session by the next request's view; here a logout empties it
    client.post(reverse("logout"))
    assert not Session.objects.filter(session_key=session.session_key).exists()
