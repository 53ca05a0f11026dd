"""Custody: every hand-over of a labelled item, recorded by scanning it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from lims.labels import label_payload
from lims.models import CustodyEvent
from samples.services import subject_register
from tests.factories import subject_dates


@pytest.fixture
def form(subject) -> dict[str, str]:
    return {
        "scanned_payload": label_payload(f"WB-{subject.code}"),
        "handed_over_by": "Clinic printer",
        "received_by": "Clara Clinician",
        "location": "Clinic room 2",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "temperature_c": "21.5",
        "container_condition": "intact",
        "note": "",
    }


def _url(subject):
    return reverse("custody-new", args=[f"WB-{subject.code}"])


@pytest.mark.requirement("CFR1271.290", "CFR11.10e")
def test_a_hand_over_is_recorded_and_shown_on_the_items_timeline(client, clinician, subject, form):
    client.force_login(clinician)
    response = client.post(_url(subject), form)
    assert response.status_code == 302
    event = CustodyEvent.objects.get()
    assert (event.received_by, str(event.temperature_c), event.recorded_by) == ("Clara Clinician", "21.5", clinician)
    assert event.history.get().history_user == clinician
    page = client.get(subject.get_absolute_url()).content.decode()
    assert "Clinic printer → Clara Clinician" in page


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
def test_scanning_another_items_label_is_refused(client, clinician, subject, form, study):
    other = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    client.force_login(clinician)
    form["scanned_payload"] = label_payload(f"WB-{other.code}")
    response = client.post(_url(subject), form)
    assert response.status_code == 400
    assert f"You scanned WB-{other.code}, but this step is for WB-{subject.code}" in response.content.decode()
    assert CustodyEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("occurred_at", "2999-01-01T10:00", "cannot be dated in the future"),
        ("received_by", "Clinic printer", "must be different people"),
        ("container_condition", "damaged", "Describe what is wrong"),
        ("temperature_c", "99", "less than or equal to 60"),
        ("temperature_c", "abc", "Enter a number"),
    ],
)
def test_an_impossible_hand_over_is_refused_and_nothing_is_written(
    client, clinician, subject, form, field, value, message
):
    client.force_login(clinician)
    form[field] = value
    response = client.post(_url(subject), form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert CustodyEvent.objects.count() == 0


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_may_not_record_a_hand_over(client, outsider, subject, form):
    client.force_login(outsider)
    assert client.post(_url(subject), form).status_code == 403
    assert CustodyEvent.objects.count() == 0


@pytest.mark.requirement("CFR11.10g")
def test_a_qa_officer_may_not_record_a_hand_over(client, qa_officer, subject, form):
    client.force_login(qa_officer)
    assert client.post(_url(subject), form).status_code == 403


def test_an_old_hand_over_can_be_recorded(client, clinician, subject, form):
    client.force_login(clinician)
    form["occurred_at"] = (timezone.localtime() - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(_url(subject), form).status_code == 302
