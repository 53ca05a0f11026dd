"""/scan/: a valid label opens its item; an unknown or forged one is refused and recorded."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from lims.labels import label_payload
from lims.models import ScanAttempt, ScanOutcome


@pytest.fixture
def wristband_payload(subject) -> str:
    return label_payload(f"WB-{subject.code}")


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
def test_a_valid_scan_opens_the_items_page(client, operator, subject, wristband_payload):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": wristband_payload + "\r\n"})
    assert response.status_code == 302
    assert response["Location"] == subject.get_absolute_url()
    attempt = ScanAttempt.objects.get()
    assert attempt.outcome == ScanOutcome.OPENED
    assert attempt.label.code == f"WB-{subject.code}"


@pytest.mark.requirement("CFR11.10h")
def test_a_forged_code_is_refused_with_a_message_and_recorded(
    client, operator, subject, wristband_payload, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    forged = wristband_payload[:-1] + ("A" if wristband_payload[-1] != "A" else "B")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("scan"), {"payload": forged})
    assert response.status_code == 400
    assert "does not verify" in response.content.decode()
    assert ScanAttempt.objects.get().outcome == ScanOutcome.FORGED
    assert len(callbacks) == 1, "QA is told about the refused scan after commit"


@pytest.mark.requirement("CFR11.10h")
def test_a_code_signed_with_another_key_is_refused_as_forged(client, operator, subject):
    with override_settings(STROMA_LABEL_KEY="another-site-entirely"):
        foreign = label_payload(f"WB-{subject.code}")
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": foreign})
    assert response.status_code == 400
    assert ScanAttempt.objects.get().outcome == ScanOutcome.FORGED


@pytest.mark.requirement("CFR11.10h")
def test_a_genuine_code_for_an_item_that_does_not_exist_is_refused(client, operator, study):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": label_payload("FL-999999")})
    assert response.status_code == 400
    assert "no item with code FL-999999" in response.content.decode()
    assert ScanAttempt.objects.get().outcome == ScanOutcome.UNKNOWN


@pytest.mark.requirement("CFR11.10h")
def test_something_that_is_not_a_label_is_refused_as_malformed(client, operator, study):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": "hello world"})
    assert response.status_code == 400
    assert "not a Stroma label" in response.content.decode()
    assert ScanAttempt.objects.get().outcome == ScanOutcome.MALFORMED


def test_an_empty_scan_is_refused_without_recording_noise(client, operator):
    client.force_login(operator)
    response = client.post(reverse("scan"), {"payload": ""})
    assert response.status_code == 400
    assert ScanAttempt.objects.count() == 0


@pytest.mark.requirement("CFR11.10h")
def test_reporting_a_refused_scan_to_qa_happens_once(
    operator, qa_officer, study, mailoutbox, django_capture_on_commit_callbacks
):
    from lims.services import scan_report_to_qa, scan_resolve

    result = scan_resolve(payload=label_payload("FL-000404"), acting_user=operator)
    with django_capture_on_commit_callbacks(execute=True):
        first = scan_report_to_qa(scan_attempt_id=result.attempt.pk)
    with django_capture_on_commit_callbacks(execute=True):
        second = scan_report_to_qa(scan_attempt_id=result.attempt.pk)
    assert (first, second) == (True, False)
    assert [m.to for m in mailoutbox] == [[qa_officer.email]]
    latest = result.attempt.history.latest()
    assert latest.history_user.username == "stroma-system"
    assert latest.history_change_reason == "refused scan reported to QA"


@pytest.mark.requirement("CFR11.10g")
def test_an_outsider_may_not_scan(client, outsider, wristband_payload):
    client.force_login(outsider)
    assert client.post(reverse("scan"), {"payload": wristband_payload}).status_code == 403
    assert ScanAttempt.objects.count() == 0


@pytest.mark.requirement("ANNEX11.12")
def test_an_anonymous_scan_is_sent_to_log_in(client, wristband_payload):
    response = client.post(reverse("scan"), {"payload": wristband_payload})
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
