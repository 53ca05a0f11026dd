"""The culture's reminder rules: feeds, observations, passages, the harvest window, overdue cultures, expiring lots.

Each rule reads every flask, batch or lot it watches with a fixed number of queries (the three flask
rules share one), and yields the next due time of each; lims.reminders decides what is due now.
Intervals in hours are elapsed time; culture days are calendar days in the site's zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, Subquery, When
from django.utils import timezone

from lims.models import Reminder
from lims.reminders import (
    LIVE,
    DueItem,
    SweepContext,
    after_hours,
    after_local_days,
    fixed_rows,
    local_midnight,
    reminder_rule,
    safe_reverse,
)
from lims.roles import OPERATOR, QA
from manufacturing.models import (
    Batch,
    BatchStatus,
    CultureEvent,
    EventKind,
    Flask,
    FlaskStatus,
    LotStatus,
    ReagentLot,
    ReagentUse,
)

FEED_DUE = "flask_feed_due"
OBSERVATION_DUE = "flask_observation_due"
PASSAGE_SUGGESTED = "flask_passage_suggested"
HARVEST_WINDOW = "batch_harvest_window"
CULTURE_OVERDUE = "batch_culture_overdue"
LOT_EXPIRING = "reagent_lot_expiring"


def _flask_link(code: str) -> str | None:
    return safe_reverse("manufacturing:flask-detail", code) or safe_reverse("label-detail", code)


def _batch_link(lot_number: str) -> str | None:
    return safe_reverse("manufacturing:batch-detail", lot_number)


def _lot_link(code: str) -> str | None:
    return safe_reverse("manufacturing:lot-detail", code) or safe_reverse("label-detail", code)


# --- What the rules read: batches in culture with their protocol, and flasks in culture -------------
# Two plain queries, read once per sweep (ctx.shared) by every rule that needs it. Asked for every
# item, the flask query is compiled once (fixed_rows); with a horizon (the sweep, the home page) it
# keeps only the flasks that may be due by then or that a live reminder is about (_possibly_due).


@dataclass(frozen=True)
class BatchState:
    pk: int
    lot_number: str
    subject_code: str
    seeded_at: dt.datetime | None
    protocol: str
    feed_hours: Decimal | None
    observation_hours: Decimal | None
    confluence_threshold: int
    passage_limit: int
    target_days: int
    tolerance_days: int

    @property
    def window(self) -> tuple[int, int]:
        return max(0, self.target_days - self.tolerance_days), self.target_days + self.tolerance_days


@dataclass(frozen=True)
class FlaskState:
    pk: int
    code: str
    batch: BatchState
    passage_number: int
    last_fed: dt.datetime | None
    last_seen: dt.datetime | None
    last_confluence: int | None


def _batches_query() -> QuerySet[Batch, Any]:
    return (
        Batch.objects.filter(status=BatchStatus.IN_CULTURE)
        .values_list(
            "pk",
            "lot_number",
            "subject__code",
            "seeded_at",
            "protocol__study__code",
            "protocol__version",
            "protocol__feed_interval_hours",
            "protocol__observation_interval_hours",
            "protocol__passage_confluence_percent",
            "protocol__passage_limit",
            "protocol__target_culture_days",
            "protocol__culture_days_tolerance",
        )
        .order_by("pk")
    )


def _batches(ctx: SweepContext) -> dict[int, BatchState]:
    def load() -> dict[int, BatchState]:
        found = {}
        for pk, lot, subject, seeded, study, version, feed, observe, threshold, limit, target, tolerance in fixed_rows(
            "manufacturing.batches_in_culture", _batches_query
        ):
            found[pk] = BatchState(
                pk,
                lot,
                subject,
                seeded,
                f"{study} protocol v{version}",
                feed,
                observe,
                threshold,
                limit,
                target,
                tolerance,
            )
        return found

    return ctx.shared("manufacturing.batches_in_culture", load)  # type: ignore[no-any-return]


def _flasks_query() -> QuerySet[Flask, Any]:
    events = CultureEvent.objects.filter(flask=OuterRef("pk")).order_by("-occurred_at", "-id")
    return (
        Flask.objects.filter(status=FlaskStatus.IN_CULTURE)
        .annotate(
            last_fed=Subquery(events.filter(kind__in=[EventKind.FEED, EventKind.SEED]).values("occurred_at")[:1]),
            last_seen=Subquery(
                events.filter(kind__in=[EventKind.OBSERVATION, EventKind.SEED]).values("occurred_at")[:1]
            ),
            last_confluence=Subquery(events.filter(kind=EventKind.OBSERVATION).values("confluence_percent")[:1]),
        )
        .values_list("pk", "code", "batch_id", "passage_number", "last_fed", "last_seen", "last_confluence")
        .order_by("pk")
    )


def _cutoff(horizon: dt.datetime, hours: Decimal) -> dt.datetime:
    """The latest moment a last event may have taken place for its interval to end by ``horizon``
    (after_hours' arithmetic, so exactly the rule's due time)."""
    return horizon - (after_hours(horizon, hours) - horizon)


def _elapsed_by(horizon: dt.datetime, interval: str, hours: Decimal | None, kinds: list[str]) -> Q:
    """Flasks of protocols with this interval and no event of these kinds after its cutoff: due by then.

    "No event after the cutoff" rather than "the last event before it": PostgreSQL answers it
    with one hashed set of the recent events instead of a look-up per flask in culture.
    """
    protocol = f"batch__protocol__{interval}"
    if hours is None or hours <= 0:  # kept in view so that the rule can skip them loudly
        return Q(**{f"{protocol}__isnull": True}) if hours is None else Q(**{protocol: hours})
    since = CultureEvent.objects.filter(flask=OuterRef("pk"), kind__in=kinds, occurred_at__gt=_cutoff(horizon, hours))
    return Q(**{protocol: hours}) & ~Q(Exists(since))


def _possibly_due(horizon: dt.datetime, batches: Iterable[BatchState]) -> Q:
    """Flasks a rule may find due by ``horizon``, and every flask a live reminder is about.

    Decided in the database, per protocol, so that the rows read are the few flasks that may be
    due (a few thousand of 100,000 in culture) rather than every flask; the rules then work out
    the exact due times from these rows as before. A flask once observed at its protocol's
    confluence is kept too; the passage rule reads whether its last observation still is.
    """
    live = Reminder.objects.filter(
        content_type=ContentType.objects.get_for_model(Flask), object_id=OuterRef("pk"), status__in=LIVE
    )
    where = Q(Exists(live)) | ~Q(batch__status=BatchStatus.IN_CULTURE)  # orphans: the sweep says so
    for batch in {(b.feed_hours, b.observation_hours, b.confluence_threshold): b for b in batches}.values():
        where |= _elapsed_by(horizon, "feed_interval_hours", batch.feed_hours, [EventKind.FEED, EventKind.SEED])
        where |= _elapsed_by(
            horizon, "observation_interval_hours", batch.observation_hours, [EventKind.OBSERVATION, EventKind.SEED]
        )
        confluent = CultureEvent.objects.filter(
            flask=OuterRef("pk"), kind=EventKind.OBSERVATION, confluence_percent__gte=batch.confluence_threshold
        )
        where |= Q(batch__protocol__passage_confluence_percent=batch.confluence_threshold) & Q(Exists(confluent))
    return where


def _flasks(ctx: SweepContext) -> list[FlaskState]:
    def load() -> list[FlaskState]:
        batches, found = _batches(ctx), []
        if ctx.horizon is None:
            rows = fixed_rows("manufacturing.flasks_in_culture", _flasks_query)
        else:
            rows = list(_flasks_query().filter(_possibly_due(ctx.horizon, batches.values())))
        for pk, code, batch_id, passage, fed, seen, confluence in rows:
            if batch_id not in batches:  # a flask left in culture by a batch that is not: say so, once
                ctx.warn_once(f"orphan:{batch_id}", "Flask %s is in culture but its batch is not; skipped", code)
                continue
            found.append(FlaskState(pk, code, batches[batch_id], passage, fed, seen, confluence))
        return found

    return ctx.shared("manufacturing.flasks_in_culture", load)  # type: ignore[no-any-return]


def _interval(ctx: SweepContext, flask: FlaskState, hours: Decimal | None, what: str) -> Decimal | None:
    """A zero or negative interval is refused by protocol validation; should one exist, skip it loudly."""
    if hours is None or hours <= 0:
        ctx.warn_once(
            f"{flask.batch.protocol}:{what}",
            "%s has a %s interval of %s h; %s reminders for its flasks are skipped until it is corrected",
            flask.batch.protocol,
            what,
            hours,
            what,
        )
        return None
    return hours


@reminder_rule(FEED_DUE, label="Feed", audience=OPERATOR, link=_flask_link)
def flask_feed_due(ctx: SweepContext) -> Iterator[DueItem]:
    """The protocol's feed interval after the last feed (or the seeding)."""
    for flask in _flasks(ctx):
        hours = _interval(ctx, flask, flask.batch.feed_hours, "feed")
        if flask.last_fed is None or hours is None:
            continue
        yield DueItem(
            kind=FEED_DUE,
            model=Flask,
            object_id=flask.pk,
            due_at=after_hours(flask.last_fed, hours),
            item_code=flask.code,
            title=f"Feed flask {flask.code} (batch {flask.batch.lot_number}, P{flask.passage_number})",
            subject_code=flask.batch.subject_code,
        )


@reminder_rule(OBSERVATION_DUE, label="Observe", audience=OPERATOR, link=_flask_link)
def flask_observation_due(ctx: SweepContext) -> Iterator[DueItem]:
    """The protocol's observation interval after the last observation (or the seeding)."""
    for flask in _flasks(ctx):
        hours = _interval(ctx, flask, flask.batch.observation_hours, "observation")
        if flask.last_seen is None or hours is None:
            continue
        yield DueItem(
            kind=OBSERVATION_DUE,
            model=Flask,
            object_id=flask.pk,
            due_at=after_hours(flask.last_seen, hours),
            item_code=flask.code,
            title=f"Observe flask {flask.code} (batch {flask.batch.lot_number}, P{flask.passage_number})",
            subject_code=flask.batch.subject_code,
        )


def _confluent_since(flasks: list[FlaskState]) -> dict[int, dt.datetime]:
    """For flasks whose last observation reached the threshold: the first observation of that run.

    Keying the suggestion on the start of the run, not the latest observation, tells the operator
    once per confluent flask rather than after every daily look. One query for all such flasks.
    """
    if not flasks:
        return {}
    thresholds = {f.pk: f.batch.confluence_threshold for f in flasks}
    events = (
        CultureEvent.objects.filter(flask_id__in=sorted(thresholds), kind=EventKind.OBSERVATION)
        .order_by("flask_id", "-occurred_at", "-id")
        .values_list("flask_id", "occurred_at", "confluence_percent")
    )
    since: dict[int, dt.datetime] = {}
    closed: set[int] = set()
    for flask_id, occurred_at, confluence in events:
        if flask_id in closed:
            continue
        if (confluence or 0) >= thresholds[flask_id]:
            since[flask_id] = occurred_at
        else:
            closed.add(flask_id)
    return since


@reminder_rule(PASSAGE_SUGGESTED, label="Passage", audience=OPERATOR, link=_flask_link)
def flask_passage_suggested(ctx: SweepContext) -> Iterator[DueItem]:
    """The last observation reached the protocol's confluence, and the passage limit allows one more."""
    confluent = [
        f
        for f in _flasks(ctx)
        if f.last_confluence is not None
        and f.last_confluence >= f.batch.confluence_threshold
        and f.passage_number < f.batch.passage_limit
    ]
    since = _confluent_since(confluent)
    for flask in confluent:
        if flask.pk not in since:
            continue
        yield DueItem(
            kind=PASSAGE_SUGGESTED,
            model=Flask,
            object_id=flask.pk,
            due_at=since[flask.pk],
            item_code=flask.code,
            title=f"Passage flask {flask.code} ({flask.last_confluence} % confluent; threshold "
            f"{flask.batch.confluence_threshold} %)",
            subject_code=flask.batch.subject_code,
        )


# --- Batches in culture: the harvest window and the overdue culture ----------------------------------


@reminder_rule(HARVEST_WINDOW, label="Harvest window", audience=OPERATOR, escalates=False, link=_batch_link)
def batch_harvest_window(ctx: SweepContext) -> Iterator[DueItem]:
    """Culture day target − tolerance, at the seeding's wall-clock time in the site's zone."""
    for batch in _batches(ctx).values():
        if batch.seeded_at is None:
            continue
        first, last = batch.window
        closes = after_local_days(batch.seeded_at, last)
        yield DueItem(
            kind=HARVEST_WINDOW,
            model=Batch,
            object_id=batch.pk,
            due_at=after_local_days(batch.seeded_at, first),
            item_code=batch.lot_number,
            title=f"Harvest window open for batch {batch.lot_number}: culture days {first}–{last} "
            f"(closes {timezone.localtime(closes):%Y-%m-%d %H:%M})",
            subject_code=batch.subject_code,
        )


@reminder_rule(CULTURE_OVERDUE, label="Culture overdue", audience=OPERATOR, link=_batch_link)
def batch_culture_overdue(ctx: SweepContext) -> Iterator[DueItem]:
    """Past target + tolerance days and still in culture: harvest or terminate."""
    for batch in _batches(ctx).values():
        if batch.seeded_at is None:
            continue
        _, last = batch.window
        yield DueItem(
            kind=CULTURE_OVERDUE,
            model=Batch,
            object_id=batch.pk,
            due_at=after_local_days(batch.seeded_at, last),
            item_code=batch.lot_number,
            title=f"Batch {batch.lot_number} is past culture day {last} and still in culture: harvest or terminate",
            subject_code=batch.subject_code,
        )


# --- Reagent lots ----------------------------------------------------------------------------------


def _lots_in_use_query(only: Q | None = None) -> QuerySet[ReagentLot, Any]:
    """Released lots a flask in culture used; with ``only``, just those lots (looked for in use only then)."""
    # The first use by a flask in culture is enough: a LIMIT 1 subquery per lot stops there, where
    # EXISTS or a join is planned as a hash join over every use of every lot (745,000 at scale).
    in_use = ReagentUse.objects.filter(lot=OuterRef("pk"), event__flask__status=FlaskStatus.IN_CULTURE)
    first_use: Any = Subquery(in_use.values("pk")[:1])
    if only is not None:
        first_use = Case(When(only, then=first_use), default=None)  # CASE: no search for the other lots
    return (
        ReagentLot.objects.filter(status=LotStatus.RELEASED)
        .alias(first_use=first_use)
        .filter(first_use__isnull=False)
        .values_list("pk", "code", "reagent__name", "lot_number", "expiry_date")
        .order_by("pk")
    )


@reminder_rule(LOT_EXPIRING, label="Lot expiring", audience=QA, escalates=False, link=_lot_link)
def reagent_lot_expiring(ctx: SweepContext) -> Iterator[DueItem]:
    """A released lot that a flask still in culture used: due at the start (site time) of the first
    day of the warning period before its expiry date (STROMA_LOT_EXPIRY_WARNING_DAYS, 14 by default)."""
    days = settings.STROMA_LOT_EXPIRY_WARNING_DAYS
    if ctx.horizon is None:
        rows = fixed_rows("manufacturing.lots_in_use", _lots_in_use_query)
    else:
        # Only lots whose warning starts by the horizon, and those a live reminder is about.
        live = Reminder.objects.filter(
            content_type=ContentType.objects.get_for_model(ReagentLot), object_id=OuterRef("pk"), status__in=LIVE
        )
        warned_from = timezone.localdate(ctx.horizon) + dt.timedelta(days=days)
        rows = list(_lots_in_use_query(Q(expiry_date__lte=warned_from) | Q(Exists(live))))
    for pk, code, reagent, lot_number, expiry in rows:
        yield DueItem(
            kind=LOT_EXPIRING,
            model=ReagentLot,
            object_id=pk,
            due_at=local_midnight(expiry - dt.timedelta(days=days)),
            item_code=code,
            title=f"{reagent} lot {lot_number} ({code}) expires {expiry:%Y-%m-%d} and is still in use",
        )
