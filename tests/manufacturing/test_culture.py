"""The culture: seeding, feeds, observations, passages, harvest, with the protocol's limits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from lims.errors import DomainError
from lims.models import Deviation, Label
from manufacturing.calculations import doubling_time_hours, population_doublings
from manufacturing.models import BatchStatus, CultureEvent, EventKind, Flask, FlaskStatus, ReagentUse
from manufacturing.selectors import batch_for_page, growth_curve, lineage
from manufacturing.services.culture import (
    Observation,
    Passage,
    Seeding,
    batch_harvest,
    batch_seed,
    flask_discard,
    flask_feed,
    flask_observe,
    flask_passage,
)
from tests.manufacturing.helpers import seeded_flasks, vessel


def _passage(
    flask,
    operator,
    trypsin,
    media_lots,
    *,
    total=4_200_000,
    viable=4_000_000,
    children=2,
    cells=300_000,
    vessel_name="T175",
    reason="",
    **kwargs,
):
    return flask_passage(
        flask=flask,
        acting_user=operator,
        passage=Passage(
            detachment_lot=trypsin,
            total_cells=total,
            viable_cells=viable,
            children=children,
            media_lots=media_lots,
            seeding=Seeding(
                vessel_type=vessel(vessel_name), cells_per_flask=cells, medium_volume_ml="30", density_reason=reason
            ),
        ),
        **kwargs,
    )


# --- the arithmetic, by hand --------------------------------------------------------------------


def test_population_doublings_match_the_hand_checked_values():
    assert population_doublings(500_000, 4_000_000) == Decimal("3.00")
    assert population_doublings(250_000, 4_000_000) == Decimal("4.00")
    assert population_doublings(500_000, 4_000_000) + population_doublings(250_000, 4_000_000) == Decimal("7.00")
    assert doubling_time_hours(7 * 24, 500_000, 4_000_000) == Decimal("56.0")


def test_no_doubling_time_is_given_when_the_cells_did_not_grow():
    assert doubling_time_hours(72, 1_000_000, 900_000) is None


# --- seeding ------------------------------------------------------------------------------------


@pytest.mark.requirement("CFR1271.290")
def test_seeding_p0_labels_each_flask_and_starts_day_0(batch, flasks, media_lots, operator):
    batch.refresh_from_db()
    assert batch.status == BatchStatus.IN_CULTURE
    assert batch.culture_day() == 0
    assert [f.passage_number for f in flasks] == [0, 0]
    assert flasks[0].seeding_density_per_cm2 == 150_000
    for flask in flasks:
        assert Label.objects.get(code=flask.code).item == flask
        seed = flask.events.get()
        assert seed.kind == EventKind.SEED
        assert {u.lot for u in seed.reagent_uses.all()} == set(media_lots)
        assert seed.history.get().history_user == operator


def test_a_density_outside_the_protocol_needs_an_acknowledged_reason(batch, operator, media_lots):
    with pytest.raises(
        DomainError,
        match=r"Seeding density 40,000 cells/cm² is outside the protocol's "
        r"100,000–200,000 cells/cm²",
    ) as refused:
        seeded_flasks(batch, operator, media_lots, cells=3_000_000)
    assert refused.value.code == "density_outside_range"
    assert Flask.objects.count() == 0
    flasks = batch_seed(
        batch=batch,
        acting_user=operator,
        flask_count=1,
        lots=media_lots,
        seeding=Seeding(
            vessel_type=vessel("T75"),
            cells_per_flask=3_000_000,
            medium_volume_ml="15",
            density_reason="low MNC yield; PI agreed",
        ),
    )
    assert flasks[0].density_warning_reason == "low MNC yield; PI agreed"


def test_a_vessel_type_the_study_does_not_allow_is_refused(batch, operator, media_lots):
    protocol = batch.protocol
    protocol.allowed_vessel_types = "T75,T175"
    protocol.save()
    with pytest.raises(DomainError, match="T25 is not a vessel type this study allows"):
        seeded_flasks(batch, operator, media_lots, cells=3_750_000, vessel_name="T25")


# --- feeds and observations ---------------------------------------------------------------------


def test_a_feed_records_who_and_the_lots(flask, operator, media_lots):
    event = flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)
    assert (event.kind, event.volume_ml, event.recorded_by) == (EventKind.FEED, Decimal("15"), operator)
    assert ReagentUse.objects.filter(event=event).count() == 2


def test_more_medium_than_the_flask_holds_is_refused_and_nothing_is_written(flask, operator, media_lots):
    """150 typed for 15: a T75 holds at most 45 mL (0.6 mL per cm²)."""
    with pytest.raises(DomainError, match=r"150 mL is more medium than a T75 holds \(at most 45.0 mL"):
        flask_feed(flask=flask, acting_user=operator, volume_ml="150", lots=media_lots)
    assert not flask.events.filter(kind=EventKind.FEED).exists()
    assert flask_feed(flask=flask, acting_user=operator, volume_ml="45", lots=media_lots).volume_ml == Decimal("45")


def test_a_flask_cannot_be_seeded_with_more_medium_than_it_holds(batch, operator, media_lots):
    seeding = Seeding(vessel_type=vessel("T25"), cells_per_flask=3_750_000, medium_volume_ml="50")
    with pytest.raises(DomainError, match=r"50 mL is more medium than a T25 holds \(at most 15.0 mL"):
        batch_seed(batch=batch, acting_user=operator, flask_count=2, lots=media_lots, seeding=seeding)
    assert Flask.objects.count() == 0


def test_a_double_tapped_feed_records_once(flask, operator, media_lots):
    first = flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots, client_token="tap-1")
    second = flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots, client_token="tap-1")
    assert first.pk == second.pk
    assert flask.events.filter(kind=EventKind.FEED).count() == 1


@pytest.mark.requirement("CFR11.10f")
def test_feeding_a_discarded_flask_is_refused_and_says_who_discarded_it(flask, operator, media_lots):
    flask_discard(flask=flask, acting_user=operator, reason="dropped in the cabinet")
    with pytest.raises(
        DomainError, match=f"Flask {flask.code} was discarded by Olivia Operator at .* and cannot be fed"
    ):
        flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots)


def test_a_discard_needs_a_reason(flask, operator):
    with pytest.raises(DomainError, match="reason"):
        flask_discard(flask=flask, acting_user=operator, reason="")


def test_contamination_quarantines_the_flask_and_raises_a_deviation_for_qa(flask, operator):
    flask_observe(
        flask=flask,
        acting_user=operator,
        observation=Observation(confluence_percent=40, morphology_ok=True, turbidity=True, note="medium cloudy"),
    )
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.QUARANTINED
    deviation = Deviation.objects.get()
    assert (deviation.source, deviation.record) == ("contamination", flask)
    assert "turbidity" in deviation.description


@pytest.mark.parametrize("confluence", [-1, 101, "abc"])
def test_a_confluence_outside_0_to_100_is_refused(flask, operator, confluence):
    with pytest.raises(DomainError, match="Confluence must be"):
        flask_observe(
            flask=flask,
            acting_user=operator,
            observation=Observation(confluence_percent=confluence, morphology_ok=True),
        )
    assert flask.events.count() == 1


def test_an_event_in_the_future_is_refused(flask, operator, media_lots):
    with pytest.raises(DomainError, match="cannot be dated in the future"):
        flask_feed(
            flask=flask,
            acting_user=operator,
            volume_ml="15",
            lots=media_lots,
            occurred_at=timezone.now() + dt.timedelta(hours=2),
        )


@pytest.mark.requirement("CFR11.10f")
def test_an_event_before_the_flask_was_seeded_is_refused(flask, operator, media_lots):
    with pytest.raises(DomainError, match="cannot be dated before"):
        flask_feed(
            flask=flask,
            acting_user=operator,
            volume_ml="15",
            lots=media_lots,
            occurred_at=flask.seeded_at - dt.timedelta(days=1),
            backdate_reason="late entry",
        )


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_a_backdated_entry_needs_a_reason(flask, operator, media_lots, time_machine):
    time_machine.move_to(timezone.now() + dt.timedelta(days=2))
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    with pytest.raises(DomainError, match="backdated"):
        flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots, occurred_at=an_hour_ago)
    event = flask_feed(
        flask=flask,
        acting_user=operator,
        volume_ml="15",
        lots=media_lots,
        occurred_at=an_hour_ago,
        backdate_reason="recorded after the cabinet session",
    )
    assert event.history.get().history_change_reason == "recorded after the cabinet session"


# --- lots ---------------------------------------------------------------------------------------


@pytest.mark.requirement("CFR11.10f")
def test_a_quarantined_lot_cannot_be_used_and_a_released_one_is_named_instead(flask, operator, media_lots):
    from manufacturing.services.lots import reagent_lot_receive

    quarantined = reagent_lot_receive(
        reagent=media_lots[0].reagent,
        acting_user=operator,
        supplier="Acme Bio",
        lot_number="NEW-1",
        expiry_date=timezone.localdate() + dt.timedelta(days=90),
    )
    with pytest.raises(DomainError, match=f"still in quarantine.*Use {media_lots[0].code}"):
        flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=[quarantined, media_lots[1]])
    assert flask.events.filter(kind=EventKind.FEED).count() == 0


def test_an_expired_lot_cannot_be_used(flask, operator, media_lots, time_machine):
    time_machine.move_to(timezone.now() + dt.timedelta(days=200))
    with pytest.raises(DomainError, match="expired on"):
        flask_feed(flask=flask, acting_user=operator, volume_ml="15", lots=media_lots, occurred_at=timezone.now())


# --- passage ------------------------------------------------------------------------------------


@pytest.mark.requirement("CFR1271.290")
def test_a_passage_closes_the_parent_and_seeds_labelled_children_one_passage_up(flask, operator, trypsin, media_lots):
    event = _passage(flask, operator, trypsin, media_lots)
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.PASSAGED
    children = list(flask.children.order_by("code"))
    assert [c.passage_number for c in children] == [1, 1]
    assert all(Label.objects.filter(code=c.code).exists() for c in children)
    assert (event.total_cells, event.viable_cells, event.viability_percent) == (4_200_000, 4_000_000, Decimal("95.2"))
    assert children[0].seeding_density_per_cm2 == 1714  # 300,000 / 175 cm²


def test_pd_is_counted_from_p1_and_accumulates_down_the_lineage(batch, flask, operator, trypsin, media_lots):
    _passage(flask, operator, trypsin, media_lots, viable=4_000_000, cells=500_000, children=1, reason="ok")
    child = flask.children.get()
    assert child.cumulative_pd_at_seeding == 0
    second = _passage(
        child, operator, trypsin, media_lots, total=4_000_000, viable=4_000_000, cells=300_000, children=1
    )
    assert second.population_doublings == Decimal("3.00")
    grandchild = child.children.get()
    assert grandchild.cumulative_pd_at_seeding == Decimal("3.00")
    page = batch_for_page(batch.lot_number)
    curve = growth_curve(page, list(page.flasks.all()))
    assert [p.cumulative_pd for p in curve] == [Decimal("0"), Decimal("0"), Decimal("3.00")]
    assert [node.flask.code for node in lineage(list(page.flasks.all()))] == [
        f.code for f in page.flasks.all() if f.parent_id is None
    ]


def test_passing_the_protocols_passage_limit_is_refused(batch, flask, operator, trypsin, media_lots):
    protocol = batch.protocol
    protocol.passage_limit = 1
    protocol.save()
    _passage(flask, operator, trypsin, media_lots, children=1)
    child = flask.children.get()
    with pytest.raises(DomainError, match="is at P1; the protocol allows up to P1") as refused:
        _passage(child, operator, trypsin, media_lots, total=1_000_000, viable=900_000, children=1)
    assert refused.value.code == "passage_limit"


def test_more_viable_than_total_cells_is_refused_as_over_100_percent(flask, operator, trypsin, media_lots):
    with pytest.raises(DomainError, match="viability would be over 100 %"):
        _passage(flask, operator, trypsin, media_lots, total=1_000_000, viable=1_200_000)


def test_a_count_larger_than_the_vessel_can_hold_is_refused(flask, operator, trypsin, media_lots):
    with pytest.raises(DomainError, match="more than a T75 can hold"):
        _passage(flask, operator, trypsin, media_lots, total=80_000_000, viable=70_000_000)
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.IN_CULTURE
    assert Flask.objects.count() == 2


@pytest.mark.parametrize(("total", "viable"), [(0, 0), (-5, 1), ("abc", 1)])
def test_zero_negative_or_non_numeric_counts_are_refused(flask, operator, trypsin, media_lots, total, viable):
    with pytest.raises(DomainError):
        _passage(flask, operator, trypsin, media_lots, total=total, viable=viable)
    assert CultureEvent.objects.filter(kind=EventKind.PASSAGE).count() == 0


@pytest.mark.requirement("CFR11.10f")
def test_passaging_the_same_flask_twice_says_who_did_it_first(flask, operator, second_operator, trypsin, media_lots):
    _passage(flask, operator, trypsin, media_lots)
    with pytest.raises(DomainError, match=f"Flask {flask.code} was passaged by Olivia Operator at"):
        _passage(flask, second_operator, trypsin, media_lots)


# --- harvest ------------------------------------------------------------------------------------


def test_harvest_pools_every_flask_in_culture(batch, flasks, operator):
    harvest = batch_harvest(
        batch=batch, acting_user=operator, viable_cells=12_000_000, viability_percent="94.5", volume_ml="50"
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.HARVESTED
    assert harvest.viable_cells == 12_000_000
    assert set(Flask.objects.values_list("status", flat=True)) == {FlaskStatus.HARVESTED}


@pytest.mark.requirement("CFR11.10f")
def test_harvest_waits_for_qa_to_decide_on_a_quarantined_flask(batch, flasks, operator):
    flask_observe(
        flask=flasks[0],
        acting_user=operator,
        observation=Observation(confluence_percent=50, morphology_ok=True, colour_change=True),
    )
    with pytest.raises(DomainError, match="quarantined; QA must decide"):
        batch_harvest(batch=batch, acting_user=operator, viable_cells=5_000_000, viability_percent="90", volume_ml="20")


@pytest.mark.parametrize(
    ("viability", "cells", "message"),
    [
        ("100.5", 5_000_000, "between 0 and 100"),
        ("90", 50_000_000, "more than 2 flask"),
    ],
)
def test_implausible_harvests_are_refused(batch, flasks, operator, viability, cells, message):
    with pytest.raises(DomainError, match=message):
        batch_harvest(
            batch=batch, acting_user=operator, viable_cells=cells, viability_percent=viability, volume_ml="20"
        )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.IN_CULTURE


@pytest.mark.requirement("CFR11.10g")
def test_a_clinician_may_not_record_culture_steps(flask, clinician, media_lots):
    with pytest.raises(DomainError, match="Your role does not allow you to record culture steps"):
        flask_feed(flask=flask, acting_user=clinician, volume_ml="15", lots=media_lots)


@pytest.mark.requirement("CFR11.10h")
def test_a_medium_lot_scanned_as_the_detachment_reagent_is_refused(flask, operator, media_lots):
    with pytest.raises(DomainError, match="is not a detachment reagent"):
        _passage(flask, operator, media_lots[0], media_lots)
    flask.refresh_from_db()
    assert flask.status == FlaskStatus.IN_CULTURE


def test_a_late_recorded_discard_keeps_its_time_and_reason(flask, operator, time_machine):
    time_machine.move_to(timezone.now() + dt.timedelta(hours=5))
    when = timezone.now() - dt.timedelta(hours=2)
    event = flask_discard(
        flask=flask,
        acting_user=operator,
        reason="cracked",
        occurred_at=when,
        backdate_reason="recorded after the session",
    )
    assert (event.occurred_at, event.backdate_reason) == (when, "recorded after the session")
