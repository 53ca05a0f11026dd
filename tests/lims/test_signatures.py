"""Electronic signatures: re-authentication, lockout, and binding to the record (21 CFR 11.50, 11.70, 11.200)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from lims.errors import DomainError
from lims.models import ContainerCondition, CustodyEvent, Label, SignatureFailure
from lims.services import custody_record
from lims.signatures import SignatureRequest, record_sign, signatures_for

WITNESSED = {"witnessed"}


@pytest.fixture
def handover(subject, clinician) -> CustodyEvent:
    label = Label.objects.get(code=f"WB-{subject.code}")
    return custody_record(
        label=label,
        acting_user=clinician,
        handed_over_by="Clinic printer",
        received_by="Clara Clinician",
        location="Clinic",
        occurred_at=timezone.now(),
        temperature_c="21.0",
        container_condition=ContainerCondition.INTACT,
    )


def _sign(record, user, password, *, meaning="witnessed", reason="I saw the hand-over"):
    return record_sign(
        record=record,
        acting_user=user,
        request=SignatureRequest(username=user.username, password=password, meaning=meaning, reason=reason),
        allowed_meanings=WITNESSED,
        required_permission="lims.sign_witnessed",
    )


@pytest.mark.requirement("CFR11.50", "CFR11.70", "ANNEX11.14")
def test_a_signature_binds_name_meaning_time_and_record(handover, qa_officer, password):
    signature = _sign(handover, qa_officer, password)
    assert signature.printed_name == "Quinn Assurance"
    assert signature.meaning == "witnessed"
    assert len(signature.content_hash) == 64
    [check] = signatures_for(handover)
    assert check.valid


@pytest.mark.requirement("CFR11.200", "CFR11.300")
def test_a_wrong_password_changes_nothing_and_is_recorded(handover, qa_officer):
    with pytest.raises(DomainError, match="Wrong username or password; nothing was signed"):
        _sign(handover, qa_officer, "not-my-password")
    assert signatures_for(handover) == []
    failure = SignatureFailure.objects.get()
    assert failure.username_entered == qa_officer.username
    assert failure.why == "wrong username or password"
    assert failure.history.get().history_user == qa_officer


@pytest.mark.requirement("CFR11.200", "CFR11.300")
def test_the_fifth_wrong_password_locks_signing_even_for_the_right_one(handover, qa_officer, password):
    for attempt in range(1, 5):
        with pytest.raises(DomainError) as refused:
            _sign(handover, qa_officer, f"wrong-{attempt}")
        assert refused.value.code == "wrong_password"
    with pytest.raises(DomainError) as fifth:
        _sign(handover, qa_officer, "wrong-5")
    assert fifth.value.code == "signing_locked"
    with pytest.raises(DomainError) as locked:
        _sign(handover, qa_officer, password)
    assert locked.value.code == "signing_locked"
    assert signatures_for(handover) == []


def test_the_lock_lifts_after_the_window(handover, qa_officer, password, time_machine):
    for attempt in range(5):
        with pytest.raises(DomainError):
            _sign(handover, qa_officer, f"wrong-{attempt}")
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=16))
    assert _sign(handover, qa_officer, password).pk


@pytest.mark.requirement("CFR11.70", "ANNEX11.14")
def test_a_record_changed_after_signing_is_shown_as_changed(handover, qa_officer, password, client):
    _sign(handover, qa_officer, password)
    handover.temperature_c = "30.0"
    handover._history_user = qa_officer
    handover._change_reason = "typo corrected"
    handover.save()
    [check] = signatures_for(handover)
    assert not check.record_unchanged
    client.force_login(qa_officer)
    page = client.get(handover.label.get_absolute_url())
    assert "CHANGED AFTER SIGNING" in page.content.decode()


@pytest.mark.requirement("CFR11.50")
def test_a_meaning_that_does_not_fit_is_refused(handover, qa_officer, password):
    with pytest.raises(DomainError, match="cannot be signed with that meaning"):
        _sign(handover, qa_officer, password, meaning="released")


def test_a_signature_without_a_reason_is_refused(handover, qa_officer, password):
    with pytest.raises(DomainError, match="reason"):
        _sign(handover, qa_officer, password, reason="  ")


@pytest.mark.requirement("CFR11.200")
def test_signing_as_someone_else_is_refused_and_recorded(handover, qa_officer, lab_manager, password):
    with pytest.raises(DomainError, match="Sign with your own username"):
        record_sign(
            record=handover,
            acting_user=qa_officer,
            request=SignatureRequest(username=lab_manager.username, password=password, meaning="witnessed", reason="x"),
            allowed_meanings=WITNESSED,
        )
    assert SignatureFailure.objects.get().why == "signed as another person"


@pytest.mark.requirement("CFR11.10g")
def test_an_operator_may_not_sign_as_witness(handover, operator, password):
    with pytest.raises(DomainError, match="not authorised"):
        _sign(handover, operator, password)


@pytest.mark.requirement("CFR11.200", "ANNEX11.14")
def test_the_signing_page_asks_for_the_password_again(client, handover, qa_officer, password):
    client.force_login(qa_officer)
    url = reverse("record-sign", args=[ContentType.objects.get_for_model(CustodyEvent).pk, handover.pk])
    refused = client.post(
        url, {"username": qa_officer.username, "password": "wrong", "meaning": "witnessed", "reason": "seen"}
    )
    assert refused.status_code == 400
    assert "nothing was signed" in refused.content.decode()
    accepted = client.post(
        url, {"username": qa_officer.username, "password": password, "meaning": "witnessed", "reason": "seen"}
    )
    assert accepted.status_code == 302
    assert len(signatures_for(handover)) == 1


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
def test_an_outsider_cannot_open_the_signing_page(client, handover, outsider):
    client.force_login(outsider)
    url = reverse("record-sign", args=[ContentType.objects.get_for_model(CustodyEvent).pk, handover.pk])
    assert client.get(url).status_code == 403
