"""The benchmark data set: thousands of batches in culture, written in bulk, with their history rows.

The rows are what the services would have written (the same codes, statuses, reagent uses, labels
and one history row per save, attributed and with a reason); only the writing is different: COPY on
PostgreSQL, ``executemany`` on SQLite, so that a million culture events take minutes, not days.
History rows are inserted directly, which the append-only guard allows (it refuses only UPDATE and
DELETE).

Time is laid out around an *anchor* (the moment of generation, kept in the marker) so that the
reminder sweep meets a steady state when the benchmarks run it "at" the anchor: every flask in
culture was last observed within the past 25 h and last fed within the past 85 h, so about 4 % of
observations and 1 % of feeds are up to an hour overdue (their reminders were created by a sweep
five minutes before the anchor) and a five-minute slice falls due at the anchor itself.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from benchmarks.world import World
from lims.models import Label
from manufacturing.calculations import doubling_time_hours, population_doublings
from manufacturing.models import Batch, CultureEvent, EventKind, Flask, ReagentUse
from samples.models import Aspirate, Subject

DATASET_VERSION = 3
MARKER_TABLE = "bench_dataset"
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Scale:
    name: str
    batches: int
    p0_per_batch: int
    children_per_p0: int
    audit_rows: int  # history rows of the one batch whose audit trail is exported
    p0_days: float = 8.0  # P0 culture before its passage
    p1_age_days: tuple[float, float] = (5.5, 7.5)  # age of the P1 flasks at the anchor
    subset_divisor: int = 10  # the smaller sweep keeps 1/10 of the batches in culture


FULL = Scale("full", batches=2000, p0_per_batch=10, children_per_p0=5, audit_rows=10_000)
SMALL = Scale("small", batches=4, p0_per_batch=2, children_per_p0=3, audit_rows=60, subset_divisor=4)


@dataclass
class Dataset:
    """What the marker row remembers: the scale, the anchor and the batches the figures use."""

    version: int
    scale: str
    anchor: dt.datetime
    large_batch: str  # lot number of the batch the "large" page query counts read
    audit_batch: str  # lot number of the batch with ``audit_rows`` history rows
    subset_batch_ids: list[int]  # batches kept in culture for the smaller sweep
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    warmed: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["anchor"] = self.anchor.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Dataset:
        data = json.loads(text)
        data["anchor"] = dt.datetime.fromisoformat(data["anchor"])
        return cls(**data)


Log = Callable[[str], None]


# --- The marker ----------------------------------------------------------------------------------


def read_marker() -> Dataset | None:
    if MARKER_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT payload FROM {MARKER_TABLE} WHERE name = %s", ["dataset"])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        return None
    try:
        return Dataset.from_json(row[0])
    except (TypeError, ValueError, KeyError):
        return None


def write_marker(dataset: Dataset) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (name varchar(40) PRIMARY KEY, payload text NOT NULL)"
        )
        cursor.execute(f"DELETE FROM {MARKER_TABLE} WHERE name = %s", ["dataset"])  # noqa: S608
        cursor.execute(
            f"INSERT INTO {MARKER_TABLE} (name, payload) VALUES (%s, %s)",  # noqa: S608
            ["dataset", dataset.to_json()],
        )


def usable(dataset: Dataset | None, scale: Scale) -> bool:
    """The marker matches this code and scale, and the data it names is still there (not flushed)."""
    if dataset is None or dataset.version != DATASET_VERSION or dataset.scale != scale.name or not dataset.warmed:
        return False
    found = Batch.objects.filter(lot_number__in=[dataset.large_batch, dataset.audit_batch]).count()
    return found == 2 and Flask.objects.filter(batch__lot_number=dataset.large_batch).exists()


# --- Writing rows in bulk --------------------------------------------------------------------------


class Table:
    """Rows of one table in a declared column order; columns not declared get the model field's default."""

    def __init__(self, sink: Sink, model: type[models.Model], columns: Sequence[str]) -> None:
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = [name for name in columns if name not in fields]
        if unknown:
            raise ValueError(f"{model._meta.label} has no field(s) {unknown}")
        rest = [f for name, f in fields.items() if name not in columns and not f.primary_key]
        self.sink = sink
        self.model = model
        self.columns = [fields[name].column for name in columns] + [f.column for f in rest]
        self.tail = tuple(f.get_default() for f in rest)
        self.rows: list[tuple[Any, ...]] = []
        self.written = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row + self.tail if self.tail else row)
        if len(self.rows) >= self.sink.chunk:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.sink.write(self.model._meta.db_table, self.columns, self.rows)
            self.written += len(self.rows)
            self.rows = []

    @property
    def count(self) -> int:
        return self.written + len(self.rows)


class Sink:
    """COPY on PostgreSQL; ``executemany`` elsewhere (the --small data set on SQLite)."""

    chunk = 50_000

    def write(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        quote = connection.ops.quote_name
        names = ", ".join(quote(c) for c in columns)
        raw = connection.connection
        assert raw is not None
        if connection.vendor == "postgresql":
            with raw.cursor() as cursor, cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = connection.ops.adapt_datetimefield_value
        marks = ", ".join(["%s"] * len(columns))

        def value(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                return adapt(v)
            if isinstance(v, dt.date | Decimal):
                return str(v)
            return v

        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",  # noqa: S608
                [tuple(value(v) for v in row) for row in rows],
            )


HISTORY = ("history_date", "history_change_reason", "history_type", "history_user_id")


class Audited:
    """A table and its history table, written together: every row is born with its '+' history row."""

    def __init__(self, sink: Sink, model: type[models.Model], columns: Sequence[str]) -> None:
        history_model = model.history.model  # type: ignore[attr-defined]
        self.rows = Table(sink, model, columns)
        self.history = Table(sink, history_model, [*columns, *HISTORY])

    def add(
        self,
        row: tuple[Any, ...],
        *,
        when: dt.datetime,
        reason: str,
        user_id: int,
        first: tuple[Any, ...] | None = None,
    ) -> None:
        """``row`` is the table's (final) state; ``first``, when given, is the state the row was created in."""
        self.rows.add(row)
        self.history.add((*(first or row), when, reason, "+", user_id))

    def change(self, row: tuple[Any, ...], *, when: dt.datetime, reason: str, user_id: int) -> None:
        """A later save: only its history row (the table holds the final state)."""
        self.history.add((*row, when, reason, "~", user_id))

    def flush(self) -> None:
        self.rows.flush()
        self.history.flush()


# --- The generator ---------------------------------------------------------------------------------

SUBJECT = [
    "id",
    "study_id",
    "protocol_id",
    "sequence",
    "code",
    "sex",
    "date_of_birth",
    "screening_date",
    "consent_date",
    "status",
    "registered_at",
    "registered_by_id",
]
ASPIRATE = [
    "id",
    "subject_id",
    "protocol_id",
    "code",
    "status",
    "collected_at",
    "collected_by_id",
    "volume_ml",
    "dispatched_at",
    "received_at",
    "received_by_id",
    "receipt_temperature_c",
    "container_intact",
    "hours_in_transit",
]
BATCH = [
    "id",
    "lot_number",
    "aspirate_id",
    "subject_id",
    "protocol_id",
    "status",
    "status_reason",
    "started_at",
    "started_by_id",
    "mnc_total_cells",
    "mnc_viability_percent",
    "seeded_at",
    "needs_rereview",
]
FLASK = [
    "id",
    "code",
    "batch_id",
    "parent_id",
    "vessel_type_id",
    "passage_number",
    "status",
    "seeded_at",
    "cells_seeded",
    "medium_volume_ml",
    "seeding_density_per_cm2",
    "cumulative_pd_at_seeding",
]
EVENT = [
    "id",
    "flask_id",
    "kind",
    "occurred_at",
    "recorded_at",
    "recorded_by_id",
    "volume_ml",
    "confluence_percent",
    "morphology_ok",
    "turbidity",
    "colour_change",
    "microscopy_contamination",
    "total_cells",
    "viable_cells",
    "viability_percent",
    "population_doublings",
    "doubling_time_hours",
]
USE = ["id", "event_id", "lot_id"]
LABEL = ["id", "code", "kind", "content_type_id", "object_id", "subject_code", "created_at", "created_by_id"]

P0_CELLS, P0_DENSITY, P0_MEDIUM = 11_250_000, 150_000, Decimal("15.0")  # T75 at 1.5×10⁵ cells/cm²
P1_CELLS, P1_DENSITY, P1_MEDIUM = 675_000, 3_000, Decimal("45.0")  # T225 at 3×10³ cells/cm²
LOOKS_NORMAL = (True, False, False, False)  # morphology normal, no sign of contamination


def _next_id(model: type[models.Model]) -> int:
    return int(model.objects.aggregate(top=Max("pk"))["top"] or 0) + 1


class Generator:
    def __init__(self, w: World, scale: Scale, anchor: dt.datetime) -> None:
        self.w, self.scale, self.anchor = w, scale, anchor
        sink = Sink()
        self.subjects = Audited(sink, Subject, SUBJECT)
        self.aspirates = Audited(sink, Aspirate, ASPIRATE)
        self.batches = Audited(sink, Batch, BATCH)
        self.flasks = Audited(sink, Flask, FLASK)
        self.events = Audited(sink, CultureEvent, EVENT)
        self.uses = Audited(sink, ReagentUse, USE)
        self.labels = Audited(sink, Label, LABEL)
        self.ids: dict[type[models.Model], int] = {
            m: _next_id(m) for m in (Subject, Aspirate, Batch, Flask, CultureEvent, ReagentUse, Label)
        }
        self.sequence = int(w.study.subjects.aggregate(top=Max("sequence"))["top"] or 0)
        self.protocol = w.study.protocol_versions.get(status="approved")
        self.ct: dict[type[models.Model], int] = {
            m: ContentType.objects.get_for_model(m).pk for m in (Subject, Aspirate, Flask)
        }
        self.operator_ids = [u.pk for u in w.operators]
        self.lot_codes = {lot.pk: lot.code for lot in [*w.medium_lots, *w.supplement_lots, *w.detachment_lots]}

    def _id(self, model: type[models.Model]) -> int:
        value = self.ids[model]
        self.ids[model] = value + 1
        return value

    def _label(self, code: str, kind: str, model: type[models.Model], pk: int, subject: str, at: dt.datetime) -> None:
        user = self.w.operator.pk if kind != "WB" else self.w.clinician.pk
        row = (self._id(Label), code, kind, self.ct[model], pk, subject, at, user)
        self.labels.add(row, when=at, reason=f"label {code} issued", user_id=user)

    def _event(
        self,
        rng: random.Random,
        flask_id: int,
        kind: str,
        at: dt.datetime,
        reason: str,
        lots: Sequence[int] = (),
        values: tuple[Any, ...] = (None,) * 11,
    ) -> None:
        user = self.operator_ids[rng.randrange(len(self.operator_ids))]
        recorded = min(at + 3 * MINUTE, self.anchor)
        pk = self._id(CultureEvent)
        self.events.add((pk, flask_id, kind, at, recorded, user, *values), when=recorded, reason=reason, user_id=user)
        for lot in lots:
            self.uses.add(
                (self._id(ReagentUse), pk, lot), when=recorded, reason=f"{self.lot_codes[lot]} used", user_id=user
            )

    # One batch: subject, aspirate, batch, P0 flasks passaged into P1 flasks still in culture.

    def batch(self, index: int) -> str:
        """One batch: subject, aspirate, batch, P0 flasks passaged into P1 flasks still in culture."""
        rng = random.Random(index)
        scale, w = self.scale, self.w
        passage_at = self.anchor - dt.timedelta(days=rng.uniform(*scale.p1_age_days))
        seeded_at = passage_at - dt.timedelta(days=scale.p0_days)
        started_at = seeded_at - DAY
        subject_id, code = self._subject(registered_at=started_at - 21 * DAY)
        aspirate_id = self._aspirate(subject_id, code, collected_at=started_at - DAY)
        batch_id, lot_number = self._id(Batch), f"{code}-B1"
        head = (batch_id, lot_number, aspirate_id, subject_id, self.protocol.pk)
        self._batch(head, started_at, seeded_at, audited=index == 1)
        lots = index % len(w.medium_lots)
        media = (w.medium_lots[lots].pk, w.supplement_lots[lots].pk)
        for _ in range(scale.p0_per_batch):
            self._p0_flask(rng, batch_id, code, seeded_at, passage_at, media, w.detachment_lots[lots].pk)
        return lot_number

    def _subject(self, *, registered_at: dt.datetime) -> tuple[int, str]:
        w, clinician = self.w, self.w.clinician.pk
        self.sequence += 1
        code = f"{w.study.subject_prefix}-{self.sequence:03d}"
        subject_id = self._id(Subject)
        screening = timezone.localtime(registered_at).date()
        born = screening.replace(year=screening.year - 45)
        row = (subject_id, w.study.pk, self.protocol.pk, self.sequence, code, "F", born, screening, screening - DAY)
        enrolled = (*row, "enrolled", registered_at, clinician)
        self.subjects.add(
            enrolled,
            first=(*row, "screening", registered_at, clinician),
            when=registered_at,
            reason="subject registered at screening",
            user_id=clinician,
        )
        self.subjects.change(enrolled, when=registered_at + DAY, reason="eligibility confirmed", user_id=clinician)
        self._label(f"WB-{code}", "WB", Subject, subject_id, code, registered_at)
        return subject_id, code

    def _aspirate(self, subject_id: int, subject_code: str, *, collected_at: dt.datetime) -> int:
        clinician, operator = self.w.clinician.pk, self.w.operator.pk
        aspirate_id, code = self._id(Aspirate), f"AS-{subject_code}-1"
        dispatched, received = collected_at + 10 * MINUTE, collected_at + 2 * HOUR
        head = (aspirate_id, subject_id, self.protocol.pk, code)
        tail = (collected_at, clinician, Decimal("15.0"))
        receipt = (dispatched, received, operator, Decimal("21.0"), True, Decimal("1.83"))
        accepted = (*head, "accepted", *tail, *receipt)
        collected = (*head, "collected", *tail, None, None, None, None, None, None)
        self.aspirates.add(accepted, first=collected, when=collected_at, reason="aspirate collected", user_id=clinician)
        self.aspirates.change(accepted, when=received, reason="received and accepted", user_id=operator)
        self._label(code, "AS", Aspirate, aspirate_id, subject_code, collected_at)
        return aspirate_id

    def _batch(self, head: tuple[Any, ...], started_at: dt.datetime, seeded_at: dt.datetime, *, audited: bool) -> None:
        """The batch row and its history; the audited batch gets ``audit_rows`` history rows in all."""
        operator = self.w.operator.pk
        cells = (operator, 200_000_000, Decimal("92.0"))
        notes = self._audit_notes(seeded_at) if audited else []
        final_reason, final_flag = (notes[-1][1], notes[-1][2]) if notes else ("", False)
        self.batches.add(
            (*head, "in_culture", final_reason, started_at, *cells, seeded_at, final_flag),
            first=(*head, "isolated", "", started_at, *cells, None, False),
            when=started_at,
            reason="batch started from aspirate",
            user_id=operator,
        )
        self.batches.change(
            (*head, "in_culture", "", started_at, *cells, seeded_at, False),
            when=seeded_at,
            reason=f"seeded into {self.scale.p0_per_batch} flask(s): day 0",
            user_id=operator,
        )
        for when, reason, flag in notes:
            row = (*head, "in_culture", reason, started_at, *cells, seeded_at, flag)
            self.batches.change(row, when=when, reason=f"review: {reason}", user_id=self.w.qa.pk)

    def _audit_notes(self, seeded_at: dt.datetime) -> list[tuple[dt.datetime, str, bool]]:
        # The first history row is the creation, the second the seeding; every later save is a review note.
        count = self.scale.audit_rows - 2
        step = (self.anchor - HOUR - seeded_at) / max(count, 1)
        return [(seeded_at + step * (n + 1), f"review note {n + 1} recorded", n % 2 == 0) for n in range(count)]

    def _p0_flask(
        self,
        rng: random.Random,
        batch_id: int,
        subject: str,
        seeded_at: dt.datetime,
        passage_at: dt.datetime,
        media: tuple[int, int],
        trypsin: int,
    ) -> None:
        scale, w = self.scale, self.w
        flask_id = self._id(Flask)
        code = f"FL-{flask_id:06d}"
        row = (flask_id, code, batch_id, None, w.t75.pk, 0)
        rest = (P0_CELLS, P0_MEDIUM, P0_DENSITY, Decimal("0"))
        user = w.operator.pk
        passaged = (*row, "passaged", seeded_at, *rest)
        first = (*row, "in_culture", seeded_at, *rest)
        self.flasks.add(passaged, first=first, when=seeded_at, reason="seeded at P0", user_id=user)
        self._label(code, "FL", Flask, flask_id, subject, seeded_at)
        self._event(rng, flask_id, EventKind.SEED, seeded_at, "seeded at P0", media)
        day = 1
        while (at := seeded_at + day * DAY + rng.uniform(-0.5, 0.5) * HOUR) < passage_at - HOUR:
            confluence = max(5, min(95, int(10 + 9 * day + rng.uniform(-5, 5))))
            self._event(
                rng,
                flask_id,
                EventKind.OBSERVATION,
                at,
                "observed",
                (),
                (None, confluence, *LOOKS_NORMAL, *(None,) * 5),
            )
            day += 1
        feed = 1
        while (at := seeded_at + feed * 84 * HOUR + rng.uniform(-1, 1) * HOUR) < passage_at - HOUR:
            self._event(rng, flask_id, EventKind.FEED, at, "fed", media, (P0_MEDIUM, *(None,) * 10))
            feed += 1
        total = rng.randint(4_000_000, 4_600_000)
        viable = int(total * rng.uniform(0.94, 0.97))
        hours = (passage_at - seeded_at).total_seconds() / 3600
        counts = (total, viable, (Decimal(viable) * 100 / total).quantize(Decimal("0.1")))
        growth = (population_doublings(P0_CELLS, viable), doubling_time_hours(hours, P0_CELLS, viable))
        reason = f"passaged into {scale.children_per_p0} flask(s)"
        self._event(
            rng,
            flask_id,
            EventKind.PASSAGE,
            passage_at,
            reason,
            (trypsin, *media),
            (None, None, *(None,) * 4, *counts, *growth),
        )
        self.flasks.change(passaged, when=passage_at, reason="passaged to P1", user_id=user)
        for _ in range(scale.children_per_p0):
            self._p1_flask(rng, batch_id, subject, flask_id, code, passage_at, media)

    def _p1_flask(
        self,
        rng: random.Random,
        batch_id: int,
        subject: str,
        parent_id: int,
        parent_code: str,
        seeded_at: dt.datetime,
        media: tuple[int, int],
    ) -> None:
        anchor, w = self.anchor, self.w
        flask_id = self._id(Flask)
        code = f"FL-{flask_id:06d}"
        row = (flask_id, code, batch_id, parent_id, w.t225.pk, 1, "in_culture", seeded_at)
        self.flasks.add(
            (*row, P1_CELLS, P1_MEDIUM, P1_DENSITY, Decimal("0")),
            when=seeded_at,
            reason="seeded at P1",
            user_id=w.operator.pk,
        )
        self._label(code, "FL", Flask, flask_id, subject, seeded_at)
        self._event(rng, flask_id, EventKind.SEED, seeded_at, f"seeded from {parent_code} at P1", media)
        # Last observation 0-25 h and last feed 0-85 h before the anchor: see the module docstring.
        seen = sorted(_back_from(anchor - rng.uniform(0, 25) * HOUR, 24 * HOUR, seeded_at + HOUR / 2))
        for at in seen:
            days = (at - seeded_at).total_seconds() / 86400
            confluence = max(5, min(95, int(12 + 7.5 * days + rng.uniform(-6, 6))))
            self._event(
                rng,
                flask_id,
                EventKind.OBSERVATION,
                at,
                "observed",
                (),
                (None, confluence, *LOOKS_NORMAL, *(None,) * 5),
            )
        for at in sorted(_back_from(anchor - rng.uniform(0, 85) * HOUR, 84 * HOUR, seeded_at + HOUR)):
            self._event(rng, flask_id, EventKind.FEED, at, "fed", media, (P1_MEDIUM, *(None,) * 10))

    def flush(self) -> None:
        for audited in (self.subjects, self.aspirates, self.batches, self.flasks, self.events, self.uses, self.labels):
            audited.flush()

    def counts(self) -> dict[str, int]:
        tables = {
            "subjects": self.subjects,
            "batches": self.batches,
            "flasks": self.flasks,
            "culture_events": self.events,
            "reagent_uses": self.uses,
            "labels": self.labels,
        }
        found = {name: audited.rows.count for name, audited in tables.items()}
        everything = (*tables.values(), self.aspirates)
        found["history_rows"] = sum(audited.history.count for audited in everything)
        return found


def _back_from(last: dt.datetime, step: dt.timedelta, after: dt.datetime) -> Iterable[dt.datetime]:
    at = last
    while at > after:
        yield at
        at -= step


# --- Build -----------------------------------------------------------------------------------------


def _quiet_constraints() -> bool:
    """PostgreSQL: skip foreign-key triggers for this load only (the rows are consistent by construction).

    ``session_replication_role`` is local to the transaction and needs a superuser; without one the
    load simply checks every row.
    """
    if connection.vendor != "postgresql":
        return False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:  # not a superuser: keep the checks
        return False
    return True


def build(w: World, scale: Scale, log: Log) -> Dataset:
    """Write the data set in one transaction (all or nothing), then analyse it and sweep it once."""
    started = time.monotonic()
    anchor = timezone.now().replace(second=0, microsecond=0)
    with transaction.atomic():
        quiet = _quiet_constraints()
        gen = Generator(w, scale, anchor)
        lots: list[str] = []
        step = max(1, scale.batches // 10)
        stage = time.monotonic()
        for index in range(scale.batches):
            lots.append(gen.batch(index))
            if (index + 1) % step == 0 or index + 1 == scale.batches:
                c = gen.counts()
                log(
                    f"generate  batches {index + 1:,}/{scale.batches:,}  flasks {c['flasks']:,}  "
                    f"events {c['culture_events']:,}  history {c['history_rows']:,}  "
                    f"({time.monotonic() - stage:.1f} s)"
                )
        gen.flush()
        with connection.cursor() as cursor:
            models_with_ids = [Subject, Aspirate, Batch, Flask, CultureEvent, ReagentUse, Label]
            for sql in connection.ops.sequence_reset_sql(no_style(), models_with_ids):
                cursor.execute(sql)
        counts = gen.counts()
        log(f"written   {_describe(counts)}  ({time.monotonic() - stage:.1f} s)")
        if quiet:
            verify_references(log)
    stage = time.monotonic()
    analyse()
    log(f"analysed  ({time.monotonic() - stage:.1f} s)")
    keep = sorted(
        Batch.objects.filter(lot_number__in=lots[: max(1, scale.batches // scale.subset_divisor)]).values_list(
            "id", flat=True
        )
    )
    dataset = Dataset(
        version=DATASET_VERSION,
        scale=scale.name,
        anchor=anchor,
        large_batch=lots[0],
        audit_batch=lots[1 % len(lots)],
        subset_batch_ids=keep,
        counts=counts,
    )
    dataset.warmed = warm_up(dataset, log)
    dataset.seconds = round(time.monotonic() - started, 1)
    write_marker(dataset)
    log(f"data set  ready in {dataset.seconds:.0f} s")
    return dataset


# (table, column, referenced table): the references of the bulk-written rows.
REFERENCES = [
    (Flask, "batch_id", Batch),
    (Flask, "parent_id", Flask),
    (CultureEvent, "flask_id", Flask),
    (ReagentUse, "event_id", CultureEvent),
    (Batch, "aspirate_id", Aspirate),
    (Aspirate, "subject_id", Subject),
]


def verify_references(log: Log) -> None:
    """The load ran without foreign-key triggers, so check every reference it wrote, in one anti-join each."""
    stage = time.monotonic()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, column, target in REFERENCES:
            table, other = quote(model._meta.db_table), quote(target._meta.db_table)
            cursor.execute(
                f"SELECT count(*) FROM {table} t LEFT JOIN {other} o ON o.id = t.{quote(column)} "  # noqa: S608
                f"WHERE t.{quote(column)} IS NOT NULL AND o.id IS NULL"
            )
            broken = cursor.fetchone()[0]
            if broken:
                raise RuntimeError(f"{broken} row(s) of {table}.{column} reference no {other} row")
    log(f"verified  every reference of the bulk-written rows ({time.monotonic() - stage:.1f} s)")


def _describe(counts: dict[str, int]) -> str:
    return "  ".join(f"{name.replace('_', ' ')} {value:,}" for name, value in counts.items())


def analyse() -> None:
    """Fresh planner statistics and visibility maps, as autovacuum would leave them on a live system."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM (ANALYZE)")
        else:
            cursor.execute("ANALYZE")


def warm_up(dataset: Dataset, log: Log) -> bool:
    """The sweep of five minutes before the anchor, committed: the reminders a live system would hold."""
    from benchmarks.figures import sweep_function

    sweep = sweep_function()
    if sweep is None:
        log("reminders sweep not available: skipped the warm-up sweep")
        return True
    stage = time.monotonic()
    result = sweep(now=dataset.anchor - 5 * dt.timedelta(minutes=1))
    log(f"warm-up   sweep at anchor − 5 min: {len(result.created):,} reminders ({time.monotonic() - stage:.1f} s)")
    return True


def ensure(w: World, scale: Scale, log: Log, *, rebuild: bool = False) -> Dataset:
    """Reuse the data set the marker describes, or build it."""
    existing = read_marker()
    if not rebuild and usable(existing, scale):
        assert existing is not None
        log(f"data set  reused (built {existing.anchor:%Y-%m-%d %H:%M} UTC): {_describe(existing.counts)}")
        return existing
    return build(w, scale, log)
