"""Reagent lots from quarantine to recall, and batches started from accepted aspirates."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from lims.errors import DomainError
from lims.models import Label
from manufacturing.models import Batch, LotStatus
from manufacturing.services.culture import batch_start, flask_feed
from manufacturing.services.lots import reagent_lot_recall, reagent_lot_receive, reagent_lot_release
from tests.manufacturing.helpers import accepted_aspirate, reagent, released_lot, seeded_flasks, started_batch
from tests.samples.helpers import aspirate_in_transit, enrolled_subject


@pytest.mark.requirement("CFR1271.290")
def test_a_received_lot_waits_in_quarantine_with_its_own_label(operator):
    lot = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="2411-07",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    assert lot.status == LotStatus.QUARANTINE
    assert Label.objects.get(code=lot.code).item == lot


@pytest.mark.requirement("CFR11.10g")
def test_only_qa_releases_a_lot(operator):
    lot = reagent_lot_receive(
        reagent=reagent("MEM-alpha"),
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="2411-07",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    with pytest.raises(DomainError, match="Your role does not allow you to release reagent lots"):
        reagent_lot_release(lot=lot, acting_user=operator, reason="looks fine")


def test_an_expired_lot_cannot_be_received(operator):
    with pytest.raises(DomainError, match="expired on"):
        reagent_lot_receive(
            reagent=reagent("MEM-alpha"),
            acting_user=operator,
            supplier="Acme Bio",
            lot_number="OLD",
            expiry_date=timezone.localdate() - dt.timedelta(days=1),
        )


@pytest.mark.requirement("CFR1271.290")
def test_a_recall_lists_exactly_the_flasks_and_batches_that_used_the_lot(
    study, clinician, operator, second_operator, qa_officer, password
):
    medium = released_lot("MEM-alpha", operator, qa_officer, lot_number="MEM-A")
    other_medium = released_lot("MEM-alpha", operator, qa_officer, lot_number="MEM-B")
    hpl = released_lot("Human platelet lysate", operator, qa_officer)
    first = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    second = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    third = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    used_a = seeded_flasks(first, operator, [medium, hpl], count=2)
    untouched = seeded_flasks(second, operator, [other_medium, hpl], count=1)
    fed_later = seeded_flasks(third, operator, [other_medium, hpl], count=2)
    flask_feed(flask=fed_later[1], acting_user=operator, volume_ml="15", lots=[medium, hpl])

    impact = reagent_lot_recall(lot=medium, acting_user=qa_officer, reason="supplier notice 2026-11: endotoxin")
    assert {f.code for f in impact.flasks} == {used_a[0].code, used_a[1].code, fed_later[1].code}
    assert {b.lot_number for b in impact.batches} == {first.lot_number, third.lot_number}
    assert untouched[0].code not in {f.code for f in impact.flasks}
    medium.refresh_from_db()
    assert (medium.status, medium.status_reason) == (LotStatus.RECALLED, "supplier notice 2026-11: endotoxin")
    with pytest.raises(DomainError, match=f"is recalled.*Use {other_medium.code}"):
        flask_feed(flask=used_a[0], acting_user=operator, volume_ml="15", lots=[medium, hpl])


@pytest.mark.requirement("CFR11.10f")
def test_a_batch_starts_only_from_an_accepted_aspirate(study, clinician, operator, password):
    subject = enrolled_subject(study, clinician, password)
    in_transit = aspirate_in_transit(subject, clinician)
    with pytest.raises(DomainError, match="a batch starts only from an accepted aspirate"):
        batch_start(aspirate=in_transit, acting_user=operator, mnc_total_cells=1_000_000, mnc_viability_percent=90)


@pytest.mark.requirement("CFR1271.290")
def test_a_batch_carries_a_readable_lot_number_and_the_subjects_protocol(study, clinician, operator, password):
    aspirate = accepted_aspirate(study, clinician, operator, password)
    batch = started_batch(aspirate, operator)
    assert batch.lot_number == f"{aspirate.subject.code}-B1"
    assert batch.protocol == aspirate.subject.protocol
    with pytest.raises(DomainError, match="already has a batch"):
        started_batch(aspirate, operator)


@pytest.mark.parametrize(
    ("cells", "viability", "message"),
    [
        (0, 90, "above zero"),
        (1_000_000, 120, "between 0 and 100"),
        ("many", 90, "whole number"),
    ],
)
def test_impossible_isolation_counts_are_refused(study, clinician, operator, password, cells, viability, message):
    aspirate = accepted_aspirate(study, clinician, operator, password)
    with pytest.raises(DomainError, match=message):
        batch_start(aspirate=aspirate, acting_user=operator, mnc_total_cells=cells, mnc_viability_percent=viability)
    assert Batch.objects.count() == 0
