"""The audit-trail page and its CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from samples.models import Subject


def _url(subject):
    return reverse("audit-trail", args=[ContentType.objects.get_for_model(Subject).pk, subject.pk])


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_the_audit_trail_page_shows_who_what_and_why(client, subject, qa_officer, password):
    client.force_login(qa_officer)
    response = client.get(_url(subject))
    assert response.status_code == 200
    body = response.content.decode()
    assert "subject registered at screening" in body
    assert "Clara Clinician" in body


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_the_csv_export_matches_the_history(client, subject, qa_officer, password):
    client.force_login(qa_officer)
    response = client.get(_url(subject) + "?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["history_id", "when_utc", "who", "action", "reason", "field", "old", "new"]
    assert any(r[5] == "code" and r[7] == subject.code for r in rows[1:])
    assert all(r[1].endswith("+00:00") for r in rows[1:])


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
def test_an_outsider_cannot_read_the_audit_trail(client, subject, outsider, password):
    client.force_login(outsider)
    assert client.get(_url(subject)).status_code == 403


@pytest.mark.requirement("ANNEX11.12")
def test_an_anonymous_visitor_is_sent_to_log_in(client, subject):
    response = client.get(_url(subject))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
