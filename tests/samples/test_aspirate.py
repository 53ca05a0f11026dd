"""Bone marrow aspirate: collection, transport and receipt against the protocol's limits."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from lims.errors import DomainError
from lims.labels import label_payload
from lims.models import CustodyEvent, Deviation, ScanAttempt, ScanOutcome
from samples.models import Aspirate, AspirateStatus
from samples.services import ReceiptDecision, aspirate_collect, aspirate_receive
from tests.samples.helpers import an_hour_ago, aspirate_in_transit, enrolled_subject, tube_payload


@pytest.fixture
def enrolled(study, clinician, password):
    return enrolled_subject(study, clinician, password)


def _receive(
    aspirate,
    operator,
    *,
    hours_after: float = 2,
    temperature: str = "21.0",
    intact: bool = True,
    decision: str = ReceiptDecision.ACCEPT,
    reason: str = "",
    payload: str | None = None,
):
    return aspirate_receive(
        aspirate=aspirate,
        acting_user=operator,
        scanned_payload=payload or tube_payload(aspirate),
        received_at=aspirate.collected_at + dt.timedelta(hours=hours_after),
        temperature_c=temperature,
        container_intact=intact,
        courier="Hamid",
        decision=decision,
        reason=reason,
    )


@pytest.mark.requirement("CFR1271.290", "CFR11.10e")
def test_an_aspirate_received_within_limits_is_accepted_with_its_custody_chain(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    received = _receive(aspirate, operator)
    assert received.status == AspirateStatus.ACCEPTED
    assert received.hours_in_transit == 2
    hand_overs = CustodyEvent.objects.filter(label__code=aspirate.code).order_by("occurred_at")
    assert [(e.handed_over_by, e.received_by) for e in hand_overs] == [
        ("Clara Clinician", "Hamid"),
        ("Hamid", "Olivia Operator"),
    ]
    latest = received.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (operator, "received within transport limits")


def test_a_receipt_after_25_hours_is_not_silently_accepted(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician, hours_ago=26)
    with pytest.raises(DomainError, match=r"25\.0 h from collection to receipt \(limit 24\.0 h\)") as refused:
        _receive(aspirate, operator, hours_after=25)
    assert refused.value.code == "outside_limits"
    aspirate.refresh_from_db()
    assert aspirate.status == AspirateStatus.IN_TRANSIT
    assert Deviation.objects.count() == 0


def test_accepting_outside_the_limits_opens_a_deviation_for_qa_with_the_reason(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician, hours_ago=26)
    received = _receive(
        aspirate,
        operator,
        hours_after=25,
        temperature="27.5",
        decision=ReceiptDecision.ACCEPT_WITH_DEVIATION,
        reason="courier delayed by snow; PI informed",
    )
    assert received.status == AspirateStatus.ACCEPTED_WITH_DEVIATION
    assert "received at 27.5 °C (allowed 15.0–25.0 °C)" in received.receipt_findings
    deviation = Deviation.objects.get()
    assert (deviation.source, deviation.status, deviation.record) == ("transport", "open", received)
    assert "courier delayed by snow" in deviation.description
    assert received.history.latest().history_change_reason == (
        "accepted with a deviation: courier delayed by snow; PI informed"
    )


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_rejecting_an_aspirate_needs_a_reason_which_is_kept_in_history(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    with pytest.raises(DomainError, match="reason"):
        _receive(aspirate, operator, intact=False, decision=ReceiptDecision.REJECT)
    rejected = _receive(aspirate, operator, intact=False, decision=ReceiptDecision.REJECT, reason="tube cracked")
    assert rejected.status == AspirateStatus.REJECTED
    assert rejected.history.latest().history_change_reason == "rejected at receipt: tube cracked"


def test_accepting_with_a_deviation_when_everything_is_within_limits_is_refused(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    with pytest.raises(DomainError, match="within the transport limits"):
        _receive(aspirate, operator, decision=ReceiptDecision.ACCEPT_WITH_DEVIATION, reason="x")


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
def test_scanning_another_tube_at_receipt_is_refused_and_recorded(enrolled, clinician, operator):
    first = aspirate_in_transit(enrolled, clinician)
    second = aspirate_in_transit(enrolled, clinician)
    with pytest.raises(DomainError, match=f"You scanned {second.code}, but this step is for {first.code}"):
        _receive(first, operator, payload=tube_payload(second))
    assert ScanAttempt.objects.get().outcome == ScanOutcome.OPENED


@pytest.mark.requirement("CFR11.10h")
def test_a_forged_tube_label_is_refused(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    forged = label_payload(aspirate.code)[:-1] + "Q"
    with pytest.raises(DomainError, match="does not verify"):
        _receive(aspirate, operator, payload=forged)
    assert ScanAttempt.objects.get().outcome == ScanOutcome.FORGED


@pytest.mark.requirement("CFR11.10f")
def test_a_receipt_before_the_collection_is_refused(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    with pytest.raises(DomainError, match="before the collection time"):
        _receive(aspirate, operator, hours_after=-1)


@pytest.mark.requirement("CFR11.10f")
def test_an_aspirate_cannot_be_received_twice(enrolled, clinician, operator):
    aspirate = aspirate_in_transit(enrolled, clinician)
    _receive(aspirate, operator)
    with pytest.raises(DomainError, match="cannot be received"):
        _receive(aspirate, operator)


@pytest.mark.requirement("CFR11.10g")
def test_a_clinician_cannot_receive_in_the_cleanroom(enrolled, clinician):
    aspirate = aspirate_in_transit(enrolled, clinician)
    with pytest.raises(DomainError, match="Your role does not allow you to receive aspirates"):
        _receive(aspirate, clinician)


@pytest.mark.parametrize(
    ("volume", "collected", "message"),
    [
        ("0", None, "not plausible"),
        ("-5", None, "not plausible"),
        ("5000", None, "not plausible"),
        ("abc", None, "must be a number"),
        ("10", "future", "cannot be in the future"),
    ],
)
def test_impossible_aspirates_are_refused_and_nothing_is_saved(enrolled, clinician, volume, collected, message):
    when = timezone.now() + dt.timedelta(days=1) if collected == "future" else an_hour_ago()
    with pytest.raises(DomainError, match=message):
        aspirate_collect(subject=enrolled, acting_user=clinician, collected_at=when, volume_ml=volume)
    assert Aspirate.objects.count() == 0


@pytest.mark.requirement("CFR1271.290")
def test_the_tube_is_labelled_with_the_subjects_chain_of_identity_code(enrolled, clinician):
    aspirate = aspirate_collect(subject=enrolled, acting_user=clinician, collected_at=an_hour_ago(), volume_ml="12.5")
    from lims.models import Label

    label = Label.objects.get(code=aspirate.code)
    assert (label.kind, label.subject_code, label.item) == ("AS", enrolled.code, aspirate)
    assert aspirate.code == f"AS-{enrolled.code}-1"
