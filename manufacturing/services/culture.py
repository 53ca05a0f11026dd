"""The cleanroom operator's day: start a batch, seed, feed, observe, passage, harvest, discard.

Every event locks its flask, checks the flask's status against FLASK_TRANSITIONS and the
protocol's limits, records the reagent lots used, and is attributed to the operator. A form
may send a client token so that a double-tapped submit records once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.db import serialize_on
from lims.errors import DomainError
from lims.models import DeviationSource, LabelKind
from lims.roles import require_permission
from lims.services import CLOCK_SKEW, deviation_open, label_create
from lims.values import cell_count, percent, positive
from manufacturing.calculations import density_per_cm2, doubling_time_hours, population_doublings
from manufacturing.models import (
    BATCH_TRANSITIONS,
    FLASK_TRANSITIONS,
    Batch,
    BatchStatus,
    CultureEvent,
    EventKind,
    Flask,
    FlaskStatus,
    Harvest,
    ReagentCategory,
    ReagentLot,
    ReagentUse,
    VesselType,
)
from manufacturing.services.lots import require_usable_lot
from samples.models import Aspirate, AspirateStatus, SubjectStatus

CULTURE_PERMISSION = "manufacturing.add_cultureevent"
# Medium in a flask is usually 0.2–0.3 mL per cm² of growth area (15 mL in a T75). Twice the upper end
# is well above any vessel's working volume: a volume above it is a typing slip (150 for 15), refused.
MAX_MEDIUM_ML_PER_CM2 = Decimal("0.6")


def _event_time(
    occurred_at: dt.datetime | None, *, not_before: dt.datetime | None, backdate_reason: str
) -> dt.datetime:
    """Now by default; a time more than the grace period ago is a backdated entry and needs a reason."""
    now = timezone.now()
    moment = occurred_at or now
    if moment > now + CLOCK_SKEW:
        raise DomainError("An event cannot be dated in the future.")
    if not_before is not None and moment < not_before:
        raise DomainError(
            f"An event cannot be dated before {timezone.localtime(not_before):%Y-%m-%d %H:%M}, "
            "when this flask or batch began."
        )
    if moment < now - dt.timedelta(minutes=settings.STROMA_BACKDATE_GRACE_MINUTES) and not backdate_reason.strip():
        raise DomainError("This entry is backdated; give the reason it is recorded late.", code="reason_required")
    return moment


def _require_lots(lots: Sequence[ReagentLot], *, on: dt.date, needed: str) -> list[ReagentLot]:
    if not lots:
        raise DomainError(f"Scan the {needed} lot(s) used.")
    locked = list(
        ReagentLot.objects.select_for_update(of=("self",))
        .select_related("reagent")
        .filter(pk__in=[lot.pk for lot in lots])
    )
    for lot in locked:
        require_usable_lot(lot, on=on)
    return locked


def _use_lots(event: CultureEvent, lots: Sequence[ReagentLot], acting_user: Any) -> None:
    for lot in lots:
        save_audited(ReagentUse(event=event, lot=lot), acting_user=acting_user, reason=f"{lot.code} used")


def _closing_words(flask: Flask) -> str:
    """Who closed the flask and when, so a second operator learns what happened at the bench."""
    last = (
        flask.events.exclude(kind__in=[EventKind.FEED, EventKind.OBSERVATION, EventKind.SEED])
        .select_related("recorded_by")
        .order_by("-occurred_at", "-id")
        .first()
    )
    if last is None:
        return f"Flask {flask.code} is {flask.get_status_display().lower()}"
    return (
        f"Flask {flask.code} was {last.get_kind_display().lower()} by {last.recorded_by.printed_name} "
        f"at {timezone.localtime(last.occurred_at):%H:%M on %Y-%m-%d}"
    )


def _lock_flask_in_culture(flask: Flask, doing: str, target: str | None = None) -> Flask:
    locked = (
        Flask.objects.select_for_update(of=("self",))
        .select_related("batch", "batch__protocol", "batch__subject", "vessel_type")
        .get(pk=flask.pk)
    )
    if locked.status != FlaskStatus.IN_CULTURE:
        raise DomainError(f"{_closing_words(locked)} and cannot be {doing}.", code="flask_closed")
    if target is not None and target not in FLASK_TRANSITIONS[locked.status]:
        raise DomainError(f"Flask {locked.code} cannot be {doing}.", code="bad_transition")
    if locked.batch.subject.status == SubjectStatus.WITHDRAWN:
        raise DomainError(f"Subject {locked.batch.subject.code} was withdrawn; culture steps are stopped.")
    return locked


def _replayed(client_token: str | None, flask: Flask, kind: str) -> CultureEvent | None:
    if not client_token:
        return None
    event = CultureEvent.objects.filter(client_token=client_token).first()
    if event is not None and (event.flask_id != flask.pk or event.kind != kind):
        raise DomainError("This form was already used for another entry; reload the page.")
    return event


def _event(
    flask: Flask,
    kind: str,
    *,
    acting_user: Any,
    occurred_at: dt.datetime,
    backdate_reason: str,
    client_token: str | None,
    reason: str,
    **fields: Any,
) -> CultureEvent:
    event = CultureEvent(
        flask=flask,
        kind=kind,
        occurred_at=occurred_at,
        recorded_by=acting_user,
        backdate_reason=backdate_reason.strip(),
        client_token=client_token or None,
        **fields,
    )
    save_audited(event, acting_user=acting_user, reason=reason)
    return event


def _close_flask(flask: Flask, status: str, acting_user: Any, reason: str) -> None:
    flask.status = status
    save_audited(flask, acting_user=acting_user, reason=reason, update_fields=["status"])


# --- Batch start and seeding -----------------------------------------------------------------


def batch_start(
    *,
    aspirate: Aspirate,
    acting_user: Any,
    mnc_total_cells: object,
    mnc_viability_percent: object,
    started_at: dt.datetime | None = None,
    backdate_reason: str = "",
) -> Batch:
    """Open a batch from an accepted aspirate, under the subject's protocol version."""
    require_permission(acting_user, "manufacturing.add_batch", action="start batches")
    cells = cell_count(mnc_total_cells, "The mononuclear cell count")
    viability = percent(mnc_viability_percent, "MNC viability")
    with transaction.atomic():
        locked = Aspirate.objects.select_for_update(of=("self",)).select_related("subject").get(pk=aspirate.pk)
        if locked.status not in {AspirateStatus.ACCEPTED, AspirateStatus.ACCEPTED_WITH_DEVIATION}:
            raise DomainError(
                f"Aspirate {locked.code} is {locked.get_status_display().lower()}; "
                "a batch starts only from an accepted aspirate."
            )
        if locked.subject.status != SubjectStatus.ENROLLED:
            raise DomainError(f"Subject {locked.subject.code} is {locked.subject.get_status_display().lower()}.")
        if Batch.objects.filter(aspirate=locked).exists():
            raise DomainError(f"Aspirate {locked.code} already has a batch.")
        moment = _event_time(started_at, not_before=locked.received_at, backdate_reason=backdate_reason)
        number = locked.subject.batches.count() + 1
        batch = Batch(
            lot_number=f"{locked.subject.code}-B{number}",
            aspirate=locked,
            subject=locked.subject,
            protocol=locked.protocol,
            started_at=moment,
            started_by=acting_user,
            mnc_total_cells=cells,
            mnc_viability_percent=viability,
        )
        save_audited(batch, acting_user=acting_user, reason=backdate_reason.strip() or "batch started from aspirate")
    return batch


@dataclass(frozen=True)
class Seeding:
    vessel_type: VesselType
    cells_per_flask: object
    medium_volume_ml: object
    density_reason: str = ""


def _checked_density(
    vessel: VesselType,
    cells: int,
    low: int,
    high: int,
    reason: str,
    protocol_vessels: set[str],
) -> tuple[int, str]:
    if vessel.name not in protocol_vessels:
        raise DomainError(
            f"{vessel.name} is not a vessel type this study allows ({', '.join(sorted(protocol_vessels))})."
        )
    density = density_per_cm2(cells, vessel.growth_area_cm2)
    if not low <= density <= high and not reason.strip():
        raise DomainError(
            f"Seeding density {density:,} cells/cm² is outside the protocol's {low:,}–{high:,} cells/cm². "
            "Check the count, or acknowledge with a reason.",
            code="density_outside_range",
        )
    return density, reason.strip() if not low <= density <= high else ""


def medium_volume(value: object, vessel: VesselType) -> Decimal:
    """A medium volume in mL that the vessel can hold."""
    volume = positive(value, "The medium volume", "mL")
    ceiling = (vessel.growth_area_cm2 * MAX_MEDIUM_ML_PER_CM2).quantize(Decimal("0.1"))
    if volume > ceiling:
        raise DomainError(
            f"{volume} mL is more medium than a {vessel.name} holds (at most {ceiling} mL, "
            f"{MAX_MEDIUM_ML_PER_CM2} mL per cm² of its {vessel.growth_area_cm2} cm²). Check the volume."
        )
    return volume


def _new_flask(
    batch: Batch,
    *,
    parent: Flask | None,
    seeding: Seeding,
    cells: int,
    density: int,
    density_reason: str,
    passage_number: int,
    at: dt.datetime,
    cumulative_pd: Decimal,
    acting_user: Any,
) -> Flask:
    serialize_on("flask-numbering")
    last = Flask.objects.order_by("-id").values_list("id", flat=True).first() or 0
    flask = Flask(
        code=f"FL-{last + 1:06d}",
        batch=batch,
        parent=parent,
        vessel_type=seeding.vessel_type,
        passage_number=passage_number,
        seeded_at=at,
        cells_seeded=cells,
        medium_volume_ml=medium_volume(seeding.medium_volume_ml, seeding.vessel_type),
        seeding_density_per_cm2=density,
        density_warning_reason=density_reason,
        cumulative_pd_at_seeding=cumulative_pd,
    )
    save_audited(flask, acting_user=acting_user, reason=f"seeded at P{passage_number}")
    label_create(
        item=flask, kind=LabelKind.FLASK, code=flask.code, subject_code=batch.subject.code, acting_user=acting_user
    )
    return flask


def batch_seed(
    *,
    batch: Batch,
    acting_user: Any,
    flask_count: int,
    seeding: Seeding,
    lots: Sequence[ReagentLot],
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
) -> list[Flask]:
    """Seed the mononuclear cells at P0 into N flasks: day 0 of the culture."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    cells = cell_count(seeding.cells_per_flask, "Cells per flask")
    if not 1 <= int(flask_count) <= 50:
        raise DomainError("Seed between 1 and 50 flasks at once.")
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).select_related("protocol", "subject").get(pk=batch.pk)
        if BatchStatus.IN_CULTURE not in BATCH_TRANSITIONS[locked.status]:
            raise DomainError(
                f"Batch {locked.lot_number} is {locked.get_status_display().lower()}; it cannot be seeded again."
            )
        if cells * int(flask_count) > locked.mnc_total_cells:
            raise DomainError(
                f"{flask_count} × {cells:,} cells is more than the {locked.mnc_total_cells:,} "
                "mononuclear cells counted."
            )
        moment = _event_time(occurred_at, not_before=locked.started_at, backdate_reason=backdate_reason)
        protocol = locked.protocol
        density, density_reason = _checked_density(
            seeding.vessel_type,
            cells,
            protocol.p0_density_min_per_cm2,
            protocol.p0_density_max_per_cm2,
            seeding.density_reason,
            protocol.vessel_types,
        )
        used = _require_lots(lots, on=timezone.localtime(moment).date(), needed="medium and supplement")
        flasks = []
        for _ in range(int(flask_count)):
            flask = _new_flask(
                locked,
                parent=None,
                seeding=seeding,
                cells=cells,
                density=density,
                density_reason=density_reason,
                passage_number=0,
                at=moment,
                cumulative_pd=Decimal("0"),
                acting_user=acting_user,
            )
            event = _event(
                flask,
                EventKind.SEED,
                acting_user=acting_user,
                occurred_at=moment,
                backdate_reason=backdate_reason,
                client_token=None,
                reason="seeded at P0",
            )
            _use_lots(event, used, acting_user)
            flasks.append(flask)
        locked.status, locked.seeded_at = BatchStatus.IN_CULTURE, moment
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"seeded into {flask_count} flask(s): day 0",
            update_fields=["status", "seeded_at"],
        )
    return flasks


# --- Events on one flask -----------------------------------------------------------------------


def flask_feed(
    *,
    flask: Flask,
    acting_user: Any,
    volume_ml: object,
    lots: Sequence[ReagentLot],
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
    client_token: str | None = None,
) -> CultureEvent:
    """A medium change, with the medium and supplement lots used."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    volume = medium_volume(volume_ml, flask.vessel_type)  # a flask's vessel never changes
    with transaction.atomic():
        replay = _replayed(client_token, flask, EventKind.FEED)
        if replay:
            return replay
        locked = _lock_flask_in_culture(flask, "fed")
        moment = _event_time(occurred_at, not_before=locked.seeded_at, backdate_reason=backdate_reason)
        used = _require_lots(lots, on=timezone.localtime(moment).date(), needed="medium and supplement")
        event = _event(
            locked,
            EventKind.FEED,
            acting_user=acting_user,
            occurred_at=moment,
            backdate_reason=backdate_reason,
            client_token=client_token,
            volume_ml=volume,
            reason=backdate_reason.strip() or "fed",
        )
        _use_lots(event, used, acting_user)
    return event


@dataclass(frozen=True)
class Observation:
    confluence_percent: object
    morphology_ok: bool
    note: str = ""
    turbidity: bool = False
    colour_change: bool = False
    microscopy_contamination: bool = False


def flask_observe(
    *,
    flask: Flask,
    acting_user: Any,
    observation: Observation,
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
    client_token: str | None = None,
) -> CultureEvent:
    """Confluence, morphology and signs of contamination; contamination quarantines the flask for QA."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    confluence = percent(observation.confluence_percent, "Confluence")
    if not observation.morphology_ok and not observation.note.strip():
        raise DomainError("Describe what is wrong with the morphology in the note.")
    with transaction.atomic():
        replay = _replayed(client_token, flask, EventKind.OBSERVATION)
        if replay:
            return replay
        locked = _lock_flask_in_culture(flask, "observed")
        moment = _event_time(occurred_at, not_before=locked.seeded_at, backdate_reason=backdate_reason)
        event = _event(
            locked,
            EventKind.OBSERVATION,
            acting_user=acting_user,
            occurred_at=moment,
            backdate_reason=backdate_reason,
            client_token=client_token,
            confluence_percent=int(confluence),
            morphology_ok=observation.morphology_ok,
            note=observation.note.strip(),
            turbidity=observation.turbidity,
            colour_change=observation.colour_change,
            microscopy_contamination=observation.microscopy_contamination,
            reason=backdate_reason.strip() or "observed",
        )
        if event.contamination_seen:
            signs = [
                name
                for name, seen in (
                    ("turbidity", observation.turbidity),
                    ("colour change", observation.colour_change),
                    ("contamination under the microscope", observation.microscopy_contamination),
                )
                if seen
            ]
            _close_flask(locked, FlaskStatus.QUARANTINED, acting_user, "quarantined: signs of contamination")
            deviation_open(
                record=locked,
                source=DeviationSource.CONTAMINATION,
                acting_user=acting_user,
                subject_code=locked.batch.subject.code,
                description=f"Flask {locked.code} of batch {locked.batch.lot_number}: "
                f"{', '.join(signs)}. {observation.note.strip()}".strip(),
            )
    return event


@dataclass(frozen=True)
class Passage:
    detachment_lot: ReagentLot
    total_cells: object
    viable_cells: object
    children: int
    seeding: Seeding
    media_lots: Sequence[ReagentLot] = ()


def _plausible_yield(flask: Flask, cells: int) -> None:
    ceiling = int(flask.vessel_type.growth_area_cm2 * settings.STROMA_MAX_CELLS_PER_CM2)
    if cells > ceiling:
        raise DomainError(
            f"{cells:,} cells is more than a {flask.vessel_type.name} can hold "
            f"(at most {ceiling:,}, {settings.STROMA_MAX_CELLS_PER_CM2:,} cells/cm²). Check the count."
        )


def flask_passage(
    *,
    flask: Flask,
    acting_user: Any,
    passage: Passage,
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
    client_token: str | None = None,
) -> CultureEvent:
    """Detach, count and reseed into children at the next passage number; the parent is closed."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    total = cell_count(passage.total_cells, "The total cell count")
    viable = cell_count(passage.viable_cells, "The viable cell count")
    if viable > total:
        raise DomainError(f"{viable:,} viable cells is more than the {total:,} counted: viability would be over 100 %.")
    cells_per_child = cell_count(passage.seeding.cells_per_flask, "Cells per new flask")
    if not 1 <= passage.children <= 40:
        raise DomainError("Seed between 1 and 40 new flasks.")
    if cells_per_child * passage.children > viable:
        raise DomainError(f"{passage.children} × {cells_per_child:,} cells is more than the {viable:,} viable cells.")
    with transaction.atomic():
        replay = _replayed(client_token, flask, EventKind.PASSAGE)
        if replay:
            return replay
        locked = _lock_flask_in_culture(flask, "passaged", FlaskStatus.PASSAGED)
        protocol = locked.batch.protocol
        if locked.passage_number + 1 > protocol.passage_limit:
            raise DomainError(
                f"Flask {locked.code} is at P{locked.passage_number}; the protocol allows up to "
                f"P{protocol.passage_limit}. Harvest instead of passaging.",
                code="passage_limit",
            )
        _plausible_yield(locked, total)
        moment = _event_time(occurred_at, not_before=locked.seeded_at, backdate_reason=backdate_reason)
        day = timezone.localtime(moment).date()
        if passage.detachment_lot.reagent.category != ReagentCategory.DETACHMENT:
            raise DomainError(f"{passage.detachment_lot} is not a detachment reagent; scan the trypsin or TrypLE lot.")
        used = _require_lots([passage.detachment_lot, *passage.media_lots], on=day, needed="detachment reagent")
        density, density_reason = _checked_density(
            passage.seeding.vessel_type,
            cells_per_child,
            protocol.passage_density_min_per_cm2,
            protocol.passage_density_max_per_cm2,
            passage.seeding.density_reason,
            protocol.vessel_types,
        )
        pd = population_doublings(locked.cells_seeded, viable)
        # P0 seeds mononuclear cells, not MSCs: doublings are counted from P1 on, as is usual for MSC lines.
        counted_pd = pd if locked.passage_number > 0 else Decimal("0")
        hours = (moment - locked.seeded_at).total_seconds() / 3600
        event = _event(
            locked,
            EventKind.PASSAGE,
            acting_user=acting_user,
            occurred_at=moment,
            backdate_reason=backdate_reason,
            client_token=client_token,
            total_cells=total,
            viable_cells=viable,
            viability_percent=(Decimal(viable) * 100 / total).quantize(Decimal("0.1")),
            population_doublings=pd,
            doubling_time_hours=doubling_time_hours(hours, locked.cells_seeded, viable),
            reason=backdate_reason.strip() or f"passaged into {passage.children} flask(s)",
        )
        _use_lots(event, used, acting_user)
        _close_flask(locked, FlaskStatus.PASSAGED, acting_user, f"passaged to P{locked.passage_number + 1}")
        for _ in range(passage.children):
            child = _new_flask(
                locked.batch,
                parent=locked,
                seeding=passage.seeding,
                cells=cells_per_child,
                density=density,
                density_reason=density_reason,
                passage_number=locked.passage_number + 1,
                at=moment,
                cumulative_pd=locked.cumulative_pd_at_seeding + counted_pd,
                acting_user=acting_user,
            )
            seed = _event(
                child,
                EventKind.SEED,
                acting_user=acting_user,
                occurred_at=moment,
                backdate_reason=backdate_reason,
                client_token=None,
                reason=f"seeded from {locked.code} at P{child.passage_number}",
            )
            _use_lots(seed, [lot for lot in used if lot.pk != passage.detachment_lot.pk], acting_user)
    return event


def flask_discard(
    *,
    flask: Flask,
    acting_user: Any,
    reason: str,
    client_token: str | None = None,
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
) -> CultureEvent:
    """Discard a flask (also a quarantined one): the reason is required and kept."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    reason = require_reason(reason, what="discarding a flask")
    with transaction.atomic():
        replay = _replayed(client_token, flask, EventKind.DISCARD)
        if replay:
            return replay
        locked = Flask.objects.select_for_update(of=("self",)).get(pk=flask.pk)
        if FlaskStatus.DISCARDED not in FLASK_TRANSITIONS[locked.status]:
            raise DomainError(f"{_closing_words(locked)} and cannot be discarded.", code="flask_closed")
        moment = _event_time(occurred_at, not_before=locked.seeded_at, backdate_reason=backdate_reason)
        event = _event(
            locked,
            EventKind.DISCARD,
            acting_user=acting_user,
            occurred_at=moment,
            backdate_reason=backdate_reason,
            client_token=client_token,
            note=reason,
            reason=f"discarded: {reason}",
        )
        _close_flask(locked, FlaskStatus.DISCARDED, acting_user, f"discarded: {reason}")
    return event


# --- Harvest ---------------------------------------------------------------------------------------


def batch_harvest(
    *,
    batch: Batch,
    acting_user: Any,
    viable_cells: object,
    viability_percent: object,
    volume_ml: object,
    occurred_at: dt.datetime | None = None,
    backdate_reason: str = "",
) -> Harvest:
    """Pool every flask in culture into the batch harvest; quarantined flasks must be decided first."""
    require_permission(acting_user, CULTURE_PERMISSION, action="record culture steps")
    cells = cell_count(viable_cells, "The viable cell count")
    viability = percent(viability_percent, "Viability")
    volume = positive(volume_ml, "The harvest volume", "mL")
    with transaction.atomic():
        locked = Batch.objects.select_for_update(of=("self",)).select_related("subject").get(pk=batch.pk)
        if BatchStatus.HARVESTED not in BATCH_TRANSITIONS[locked.status]:
            raise DomainError(
                f"Batch {locked.lot_number} is {locked.get_status_display().lower()} and cannot be harvested."
            )
        flasks = list(
            locked.flasks.select_for_update(of=("self",))
            .select_related("vessel_type")
            .filter(status__in=[FlaskStatus.IN_CULTURE, FlaskStatus.QUARANTINED])
        )
        quarantined = [f.code for f in flasks if f.status == FlaskStatus.QUARANTINED]
        if quarantined:
            raise DomainError(
                f"Flask(s) {', '.join(quarantined)} are quarantined; QA must decide on them "
                "(discard) before the batch is harvested."
            )
        if not flasks:
            raise DomainError(f"Batch {locked.lot_number} has no flask in culture to harvest.")
        ceiling = int(sum(f.vessel_type.growth_area_cm2 for f in flasks) * settings.STROMA_MAX_CELLS_PER_CM2)
        if cells > ceiling:
            raise DomainError(
                f"{cells:,} cells is more than {len(flasks)} flask(s) can hold (at most {ceiling:,}). Check the count."
            )
        moment = _event_time(occurred_at, not_before=locked.seeded_at, backdate_reason=backdate_reason)
        for flask in flasks:
            _event(
                flask,
                EventKind.HARVEST,
                acting_user=acting_user,
                occurred_at=moment,
                backdate_reason=backdate_reason,
                client_token=None,
                reason="pooled into the batch harvest",
            )
            _close_flask(flask, FlaskStatus.HARVESTED, acting_user, "pooled into the batch harvest")
        harvest = Harvest(
            batch=locked,
            harvested_at=moment,
            viable_cells=cells,
            viability_percent=viability,
            volume_ml=volume,
            recorded_by=acting_user,
        )
        save_audited(harvest, acting_user=acting_user, reason=backdate_reason.strip() or "harvest recorded")
        locked.status = BatchStatus.HARVESTED
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"harvested: {cells:,} viable cells from {len(flasks)} flask(s)",
            update_fields=["status"],
        )
    return harvest
