"""One function per figure. Each measures Stroma's real code path (views, services, history, signatures
and checks all on) and, where the figure is a ratio, its floor in the same process and database."""

from __future__ import annotations

import datetime as dt
import importlib
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from benchmarks.dataset import Dataset, Scale
from benchmarks.world import SmallBatch, World
from lims import labels
from lims.audit import audit_csv, audit_entries
from lims.models import Label, LabelKind, User
from manufacturing.models import Batch, BatchStatus, Flask, FlaskStatus
from manufacturing.services.culture import flask_feed

HOST = "127.0.0.1"


@dataclass
class Figure:
    name: str
    value: float | None  # None: not measurable in this tree (the note says why)
    unit: str
    note: str = ""

    def line(self) -> str:
        shown = "n/a" if self.value is None else _number(self.value)
        return f"BENCH {self.name} {shown} {self.unit}"


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass
class Goal:
    op: str  # "<=", ">=" or "equal" (both sizes of a page)
    limit: float


GOALS: dict[str, Goal] = {
    "scan_ratio": Goal("<=", 1.5),
    "history_overhead": Goal("<=", 2.0),
    "sweep_seconds_100k": Goal("<=", 5.0),
    "sweep_scaling": Goal("<=", 12.0),
    "label_sheet_96_seconds": Goal("<=", 1.5),
    "throughput_ratio": Goal(">=", 0.6),
    "audit_export_10k_seconds": Goal("<=", 1.0),
}
PAGE_QUERY_LIMIT = 15


@dataclass
class Report:
    """Prints each figure as soon as it is known (a long run shows its progress) and keeps them all."""

    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # figures whose code path raised

    def add(self, name: str, value: float | None, unit: str, note: str = "") -> Figure:
        figure = Figure(name, value, unit, note)
        self.figures.append(figure)
        print(figure.line() + (f"  # {note}" if note and value is None else ""), flush=True)
        return figure

    def value(self, name: str) -> float | None:
        return next((f.value for f in self.figures if f.name == name), None)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


# --- Pages: query counts at both sizes ------------------------------------------------------------


def logged_in_client(user: User) -> Client:
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    return client


_STATEMENT = re.compile(r'^\s*(\w+)(?:.*?\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?)?', re.IGNORECASE | re.DOTALL)


def statement_label(sql: str) -> str:
    """``SELECT manufacturing_flask``, ``UPDATE django_session``, ``BEGIN``: what a page's statement touches."""
    found = _STATEMENT.match(sql)
    if found is None:
        return sql[:40]
    verb, table = found.group(1).upper(), found.group(2)
    if verb == "UPDATE":
        table = sql.split()[1].strip('"')
    return f"{verb} {table}" if table else verb


def _queries(client: Client, url: str) -> tuple[int, list[str]]:
    """Every statement the page sends, as Django's assertNumQueries counts them (BEGIN and COMMIT included)."""
    client.get(url)  # caches a first request fills (content types, templates) are not the page's queries
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return len(captured.captured_queries), [statement_label(q["sql"]) for q in captured.captured_queries]


def page_urls(small: SmallBatch, dataset: Dataset) -> dict[str, tuple[Callable[[], str], Callable[[], str]]]:
    large = Batch.objects.select_related("subject").get(lot_number=dataset.large_batch)
    # The large flask: a P0 flask of the large batch, with its full culture history and five children.
    large_flask = Flask.objects.filter(batch=large, passage_number=0).order_by("id").first()
    assert large_flask is not None
    changelist = "admin:manufacturing_batch_changelist"
    prefix = large.lot_number.split("-")[0]  # every subject of the study: a full page of batches
    return {
        "flask": (
            lambda: reverse("manufacturing:flask-detail", args=[small.flasks[0].code]),
            lambda: reverse("manufacturing:flask-detail", args=[large_flask.code]),
        ),
        "batch": (
            lambda: reverse("manufacturing:batch-detail", args=[small.batch.lot_number]),
            lambda: reverse("manufacturing:batch-detail", args=[large.lot_number]),
        ),
        # The subject's timeline (every source of the subject's story), under the figure's old name.
        "subject": (
            lambda: reverse("product:subject-timeline", args=[small.batch.subject.code]),
            lambda: reverse("product:subject-timeline", args=[large.subject.code]),
        ),
        "admin_batch_changelist": (
            lambda: reverse(changelist) + f"?q={small.batch.lot_number}",
            lambda: reverse(changelist) + f"?q={prefix}",
        ),
        "admin_batch_change": (
            lambda: reverse("admin:manufacturing_batch_change", args=[small.batch.pk]),
            lambda: reverse("admin:manufacturing_batch_change", args=[large.pk]),
        ),
    }


def page_queries(report: Report, client: Client, small: SmallBatch, dataset: Dataset) -> None:
    for page, (small_url, large_url) in page_urls(small, dataset).items():
        try:
            urls = {"small": small_url(), "large": large_url()}
        except NoReverseMatch as exc:
            for size in ("small", "large"):
                report.add(f"page_queries_{page}_{size}", None, "queries", f"page not in this tree ({exc})")
            continue
        report.details.setdefault("page_urls", {})[page] = urls
        for size, url in urls.items():
            count, statements = _queries(client, url)
            report.details.setdefault("page_statements", {})[f"{page}_{size}"] = statements
            report.add(f"page_queries_{page}_{size}", count, "queries")


# --- Scan → flask page against the bare view, in-process -------------------------------------------


def bare_url(code: str) -> str:
    return reverse("bench-bare", args=[code])


def scan_codes(count: int) -> list[str]:
    """Flasks in culture spread over the whole data set, so that no page is served from a warm cache."""
    codes = list(Flask.objects.filter(status=FlaskStatus.IN_CULTURE).order_by("id").values_list("code", flat=True))
    step = max(1, len(codes) // count)
    return (codes[::step] * (count // max(1, len(codes[::step])) + 1))[:count]


def _scan_once(client: Client, payload: str) -> tuple[float, float]:
    started = time.perf_counter()
    response = client.post("/scan/", {"payload": payload})
    posted = time.perf_counter()
    if response.status_code != 302:
        raise RuntimeError(f"POST /scan/ answered {response.status_code}, not a redirect to the flask")
    page = client.get(response["Location"])
    shown = time.perf_counter()
    if page.status_code != 200:
        raise RuntimeError(f"GET {response['Location']} answered {page.status_code}")
    return posted - started, shown - posted


def _bare_once(client: Client, code: str) -> float:
    started = time.perf_counter()
    response = client.get(bare_url(code))
    if response.status_code != 200:
        raise RuntimeError(f"the bare view answered {response.status_code}")
    return time.perf_counter() - started


def scan_ratio(report: Report, client: Client, codes: list[str], rounds: int) -> None:
    """Median of POST /scan/ + the flask page it redirects to, ÷ median of the bare view; interleaved."""
    for code in codes[:5]:
        _scan_once(client, labels.label_payload(code))
        _bare_once(client, code)
    posts, pages, totals, bare = [], [], [], []
    for n in range(rounds):
        code = codes[n % len(codes)]
        payload = labels.label_payload(code)
        if n % 2:
            bare.append(_bare_once(client, code))
        post, page = _scan_once(client, payload)
        posts.append(post)
        pages.append(page)
        totals.append(post + page)
        if not n % 2:
            bare.append(_bare_once(client, code))
    report.add("scan_ratio", round(statistics.median(totals) / statistics.median(bare), 2), "ratio")
    report.add("scan_median_ms", median_ms(totals), "ms")
    report.add("scan_post_median_ms", median_ms(posts), "ms")
    report.add("scan_flask_page_median_ms", median_ms(pages), "ms")
    report.add("bare_median_ms", median_ms(bare), "ms")
    report.add("qr_symbol_median_ms", qr_symbol_ms(client, codes[: max(5, rounds // 4)]), "ms")


def qr_symbol_ms(client: Client, codes: list[str]) -> float:
    """The label's symbol, which the browser fetches beside the flask page (and then keeps): drawn cold."""
    from lims.selectors import screen_qr_svg, screen_qr_url

    seconds = []
    for code in codes:
        screen_qr_svg.cache_clear()
        started = time.perf_counter()
        response = client.get(screen_qr_url(code))
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200 or response["Content-Type"] != "image/svg+xml":
            raise RuntimeError(f"the QR symbol of {code} answered {response.status_code}")
    return median_ms(seconds)


# --- History: a feed through the service, with and without its history rows ------------------------


def history_overhead(report: Report, w: World, small: SmallBatch, rounds: int) -> None:
    """flask_feed as the bench records it (event, two reagent uses, a history row each) ÷ the same call
    with django-simple-history's documented global switch (SIMPLE_HISTORY_ENABLED) off: the baseline only."""
    flask = small.flasks[1]

    def feed() -> float:
        person = User.objects.get(pk=w.operator.pk)  # a fresh user per call, as a request has
        started = time.perf_counter()
        flask_feed(flask=flask, acting_user=person, volume_ml="15", lots=small.media)
        return time.perf_counter() - started

    def feed_without_history() -> float:
        with override_settings(SIMPLE_HISTORY_ENABLED=False):
            return feed()

    feed(), feed_without_history()
    with_history, without = [], []
    for n in range(rounds):
        if n % 2:
            without.append(feed_without_history())
        with_history.append(feed())
        if not n % 2:
            without.append(feed_without_history())
    report.add("history_overhead", round(statistics.median(with_history) / statistics.median(without), 2), "ratio")
    report.add("feed_with_history_median_ms", median_ms(with_history), "ms")
    report.add("feed_without_history_median_ms", median_ms(without), "ms")


# --- Label sheet -------------------------------------------------------------------------------------

SHEET = 96


def label_sheet(report: Report, rounds: int) -> None:
    """96 flask labels never printed before in this process: the QR cache is cleared before each sheet."""
    pool = list(Label.objects.filter(kind=LabelKind.FLASK).order_by("id")[: SHEET * (rounds + 1)])
    if not pool:
        raise RuntimeError("no flask label to print")
    pool = (pool * (SHEET * (rounds + 1) // len(pool) + 1))[: SHEET * (rounds + 1)]
    labels.label_sheet_pdf([labels.label_text_for(label) for label in pool[:SHEET]])  # loads WeasyPrint and fonts
    seconds = []
    for n in range(1, rounds + 1):
        sheet = pool[n * SHEET : (n + 1) * SHEET]
        labels._qr.cache_clear()
        started = time.perf_counter()
        pdf = labels.label_sheet_pdf([labels.label_text_for(label) for label in sheet])
        seconds.append(time.perf_counter() - started)
        if not pdf.startswith(b"%PDF"):
            raise RuntimeError("the label sheet is not a PDF")
    report.add("label_sheet_96_seconds", round(statistics.median(seconds), 3), "s")


# --- Audit trail export --------------------------------------------------------------------------------


def audit_export(report: Report, dataset: Dataset, scale: Scale, rounds: int) -> None:
    batch = Batch.objects.get(lot_number=dataset.audit_batch)
    seconds, rows = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        entries = audit_entries(batch)
        text = audit_csv(entries)
        seconds.append(time.perf_counter() - started)
        rows = len(entries)
        if not text.startswith("history_id,"):
            raise RuntimeError("the audit CSV has no header")
    if rows < scale.audit_rows:
        raise RuntimeError(f"the audit batch has {rows} history rows, not {scale.audit_rows}")
    report.details["audit_export_history_rows"] = rows
    report.add("audit_export_10k_seconds", round(statistics.median(seconds), 3), "s")


# --- The reminders sweep --------------------------------------------------------------------------------


def sweep_function() -> Callable[..., Any] | None:
    """lims.reminders.reminders_sweep(now=…), when this tree has it."""
    try:
        module = importlib.import_module("lims.reminders")
    except ImportError:
        return None
    sweep = getattr(module, "reminders_sweep", None)
    return sweep if callable(sweep) else None


@contextmanager
def rolled_back() -> Iterator[None]:
    """Measure a sweep without keeping what it wrote, so that every run meets the same steady state."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# Tables whose rows the measured sweeps update or insert and then roll back, and the session table.
DIRTIED = [
    "manufacturing_flask",
    "manufacturing_batch",
    "lims_reminder",
    "lims_historicalreminder",
    "lims_notification",
    "lims_historicalnotification",
    "django_session",
]


def vacuum_dirtied_tables() -> None:
    """What autovacuum does between runs, for the tables earlier runs left dead rows in.

    Every run rolls back sweeps that update 98,000 flasks and insert thousands of reminders; on a
    server with autovacuum off (as a test server may be) those dead rows pile up run after run and
    slow every later run's scans. Vacuumed before measuring, so that each run starts alike.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(connection.ops.quote_name(t) for t in DIRTIED))


def keep_in_culture(batch_ids: list[int], *, now: dt.datetime) -> None:
    """The smaller sweep's world (inside a rolled-back transaction): only these batches are still in culture.

    The other flasks and batches are marked harvested and their open reminders resolved, as the sweep
    that saw them leave culture would have; no history is written because nothing here is kept.
    """
    from lims.models import Reminder, ReminderStatus

    Flask.objects.filter(status=FlaskStatus.IN_CULTURE).exclude(batch_id__in=batch_ids).update(
        status=FlaskStatus.HARVESTED
    )
    Batch.objects.filter(status=BatchStatus.IN_CULTURE).exclude(id__in=batch_ids).update(status=BatchStatus.HARVESTED)
    gone = Q(
        content_type=ContentType.objects.get_for_model(Flask),
        object_id__in=Flask.objects.filter(status=FlaskStatus.HARVESTED).values("id"),
    ) | Q(
        content_type=ContentType.objects.get_for_model(Batch),
        object_id__in=Batch.objects.filter(status=BatchStatus.HARVESTED).values("id"),
    )
    Reminder.objects.filter(gone, status__in=[ReminderStatus.OPEN, ReminderStatus.ACKNOWLEDGED]).update(
        status=ReminderStatus.RESOLVED, resolved_at=now, resolution="left culture"
    )


def _sweep_seconds(sweep: Callable[..., Any], dataset: Dataset, subset: bool) -> tuple[float, int, int]:
    with rolled_back():
        if subset:
            keep_in_culture(dataset.subset_batch_ids, now=dataset.anchor)
        active = Flask.objects.filter(status=FlaskStatus.IN_CULTURE).count()
        started = time.perf_counter()
        result = sweep(now=dataset.anchor)
        return time.perf_counter() - started, active, len(result.created)


def rule_seconds(dataset: Dataset) -> dict[str, float]:
    """Where a sweep's time goes: each rule's read as the sweep asks for it (what is due by the anchor and
    what live reminders are about), in registration order (the flask rules share one query)."""
    try:
        from lims.reminders import SweepContext, rules
    except ImportError:
        return {}
    ctx = SweepContext(now=dataset.anchor, horizon=dataset.anchor)
    spent = {}
    with rolled_back():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # as due_items has it
        for kind, rule in rules().items():
            started = time.perf_counter()
            found = sum(1 for _ in rule.find(ctx))
            spent[f"{kind} ({found:,} items)"] = round(time.perf_counter() - started, 3)
    return spent


def sweep(report: Report, dataset: Dataset, rounds: int) -> None:
    function = sweep_function()
    if function is None:
        note = "lims.reminders.reminders_sweep is not in this tree yet; the benchmark calls it once it is"
        for name, unit in (("sweep_seconds_100k", "s"), ("sweep_seconds_10k", "s"), ("sweep_scaling", "ratio")):
            report.add(name, None, unit, note)
        return
    results = {}
    for subset in (False, True):
        runs = [_sweep_seconds(function, dataset, subset) for _ in range(rounds)]
        results[subset] = statistics.median(r[0] for r in runs)
        report.details[f"sweep_{'subset' if subset else 'all'}"] = {
            "active_flasks": runs[0][1],
            "reminders_created": runs[0][2],
            "seconds": [round(r[0], 3) for r in runs],
        }
    report.details["sweep_rule_seconds"] = rule_seconds(dataset)
    report.add("sweep_seconds_100k", round(results[False], 3), "s")
    report.add("sweep_seconds_10k", round(results[True], 3), "s")
    report.add("sweep_scaling", round(results[False] / results[True], 2), "ratio")


def goal_lines(report: Report) -> list[str]:
    """One line per goal, met or missed, for the end of the output (not BENCH lines)."""
    lines = []
    for name, goal in GOALS.items():
        value = report.value(name)
        if value is None:
            lines.append(f"goal {name} {goal.op} {goal.limit:g}: not measured")
            continue
        met = value <= goal.limit if goal.op == "<=" else value >= goal.limit
        lines.append(f"goal {name} {goal.op} {goal.limit:g}: {'met' if met else 'MISSED'} ({_number(value)})")
    pages = sorted({f.name.rsplit("_", 1)[0] for f in report.figures if f.name.startswith("page_queries_")})
    for page in pages:
        small, large = report.value(f"{page}_small"), report.value(f"{page}_large")
        if small is None or large is None:
            lines.append(f"goal {page} equal and <= {PAGE_QUERY_LIMIT}: not measured")
            continue
        met = small == large and large <= PAGE_QUERY_LIMIT
        shown = f"{_number(small)} small, {_number(large)} large"
        lines.append(f"goal {page} equal and <= {PAGE_QUERY_LIMIT}: {'met' if met else 'MISSED'} ({shown})")
    return lines


def meets(report: Report) -> dict[str, bool | None]:
    found: dict[str, bool | None] = {}
    for line in goal_lines(report):
        name = line.split()[1]
        found[name] = None if line.endswith("not measured") else ": met" in line
    return found


def email_outbox_clear() -> None:
    from django.core import mail

    if hasattr(mail, "outbox"):
        mail.outbox.clear()


def settings_summary() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    return {
        "engine": db["ENGINE"].rsplit(".", 1)[-1],
        "name": str(db["NAME"]),
        "version": version,
        "conn_max_age": db.get("CONN_MAX_AGE"),
    }
