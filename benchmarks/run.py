"""``python -m benchmarks`` (``make bench``): build or reuse the data set, take every figure, print and save them.

Each figure is printed as ``BENCH <name> <value> <unit>`` as soon as it is known, and all of them are
written to ``benchmarks/results.json``. ``--small`` runs every figure's code path on tiny data in
seconds (it is what tests/test_benchmarks_small.py runs); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

HERE = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/stroma_bench"
DEFAULT_OUTPUT = HERE / "results.json"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny data, every code path, seconds (for the tests)")
    parser.add_argument(
        "--database-url",
        help="full run: BENCH_DATABASE_URL or " + DEFAULT_DATABASE_URL + "; --small: a temporary SQLite file",
    )
    parser.add_argument("--output", type=Path, help=f"where the JSON goes (full run: {DEFAULT_OUTPUT})")
    parser.add_argument("--rebuild", action="store_true", help="build the data set again even if it can be reused")
    parser.add_argument("--requests", type=int, help="requests of each kind under gunicorn (full: 2000)")
    parser.add_argument("--concurrency", type=int, help="client threads under gunicorn, at most 8 (full: 8)")
    return parser.parse_args(argv)


# --- The database: the benchmark's own, created when missing ----------------------------------------


def _pg_parts(url: str) -> dict[str, Any]:
    import dj_database_url

    parsed = dj_database_url.parse(url)
    return {
        "dbname": parsed["NAME"],
        "user": parsed.get("USER") or None,
        "password": parsed.get("PASSWORD") or None,
        "host": parsed.get("HOST") or None,
        "port": parsed.get("PORT") or None,
    }


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create the PostgreSQL database when it is missing; with ``fresh``, drop it first (bench databases only)."""
    if not url.startswith(("postgres://", "postgresql://")):
        if fresh and url.startswith("sqlite:///"):
            Path(urlsplit(url).path).unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    parts = _pg_parts(url)
    name = parts.pop("dbname")
    with psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in parts.items() if v}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if exists and fresh:
            if "bench" not in name:
                raise SystemExit(
                    f"The data set in {name!r} must be rebuilt, but only a database whose name contains 'bench' is "
                    "ever dropped. Point BENCH_DATABASE_URL at the benchmark's own database."
                )
            log(f"database  dropping {name} to rebuild the data set")
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            exists = False
        if not exists:
            log(f"database  creating {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate() -> None:
    from django.core.management import call_command

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    log(f"migrated  ({time.monotonic() - started:.1f} s)")


# --- Figures -----------------------------------------------------------------------------------------


def guarded(report: Any, names: list[tuple[str, str]], take: Callable[[], None]) -> None:
    """A figure whose code path fails is printed as n/a with the reason, and the run goes on.

    A lost database connection (the server restarted or the connection was terminated by someone
    else on a shared machine) is not the code's failure: the figure is taken once more on a new
    connection before it is given up.
    """
    from django.db import InterfaceError, OperationalError, connections

    try:
        try:
            take()
        except (OperationalError, InterfaceError) as lost:
            log(f"database  connection lost ({type(lost).__name__}: {lost}); taking the figure again")
            connections.close_all()
            take()
    except Exception as exc:  # a broken page or service must not hide the other figures
        traceback.print_exc(file=sys.stderr)
        report.failures.append(f"{names[0][0]}: {type(exc).__name__}: {exc}")
        note = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        for name, unit in names:
            if report.value(name) is None and not any(f.name == name for f in report.figures):
                report.add(name, None, unit, note)


def machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    memory = 0
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def take_figures(report: Any, args: argparse.Namespace, small_mode: bool) -> dict[str, Any]:
    from benchmarks import dataset as data
    from benchmarks import figures, server
    from benchmarks.world import fresh_small_batch, world

    scale = data.SMALL if small_mode else data.FULL
    rounds = 1 if small_mode else 3
    started = time.monotonic()
    w = world()
    dataset = data.ensure(w, scale, log, rebuild=args.rebuild and small_mode)
    figures.vacuum_dirtied_tables()
    small = fresh_small_batch(w)
    took = time.monotonic() - started
    log(f"fresh     small batch {small.batch.lot_number} with {len(small.flasks)} flasks ({took:.1f} s)")
    client = figures.logged_in_client(w.operator)
    codes = figures.scan_codes(40 if small_mode else 400)
    requests = args.requests or (40 if small_mode else 2000)
    pages = [
        (f"page_queries_{p}_{s}", "queries") for p in figures.page_urls(small, dataset) for s in ("small", "large")
    ]

    steps: list[tuple[str, list[tuple[str, str]], Callable[[], None]]] = [
        ("page query counts", pages, lambda: figures.page_queries(report, client, small, dataset)),
        (
            "scan → flask page",
            [
                ("scan_ratio", "ratio"),
                ("scan_median_ms", "ms"),
                ("bare_median_ms", "ms"),
                ("qr_symbol_median_ms", "ms"),
            ],
            lambda: figures.scan_ratio(report, client, codes, 20 if small_mode else 301),
        ),
        (
            "history overhead",
            [("history_overhead", "ratio")],
            lambda: figures.history_overhead(report, w, small, 4 if small_mode else 41),
        ),
        (
            "reminders sweep",
            [("sweep_seconds_100k", "s"), ("sweep_seconds_10k", "s"), ("sweep_scaling", "ratio")],
            lambda: figures.sweep(report, dataset, 1 if small_mode else 3),
        ),
        (
            "label sheet",
            [("label_sheet_96_seconds", "s")],
            # Seven sheets: one sheet's time moves by a tenth from one sheet to the next on a busy machine.
            lambda: figures.label_sheet(report, 1 if small_mode else 7),
        ),
        (
            "audit export",
            [("audit_export_10k_seconds", "s")],
            lambda: figures.audit_export(report, dataset, scale, rounds),
        ),
        (
            "throughput under gunicorn",
            [("throughput_ratio", "ratio")],
            lambda: server.throughput(
                report,
                w.operator,
                figures.scan_codes(requests),  # a different flask for every scan: no warm QR cache
                requests=requests,
                concurrency=min(8, args.concurrency or (2 if small_mode else 8)),
            ),
        ),
    ]
    for title, names, take in steps:
        stage = time.monotonic()
        log(f"measuring {title}")
        guarded(report, names, take)
        log(f"measured  {title} ({time.monotonic() - stage:.1f} s)")
    figures.email_outbox_clear()
    return {"dataset": json.loads(dataset.to_json()), "scale": asdict(scale), "small_batch": small.batch.lot_number}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    small_mode = bool(args.small)
    temporary = None
    if args.database_url:
        url = args.database_url
    elif small_mode:
        temporary = tempfile.TemporaryDirectory(prefix="stroma-bench-small-")
        url = f"sqlite:///{Path(temporary.name) / 'bench.sqlite3'}"
    else:
        url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    if small_mode:
        os.environ["STROMA_BENCH_FAST_HASHER"] = "1"
    began, load_at_start = dt.datetime.now(dt.UTC), os.getloadavg()
    log(f"{'small' if small_mode else 'full'} run on {_safe(url)}")
    if not small_mode:
        prepare_database(url, fresh=False)

    import django

    django.setup()
    migrate()
    if not small_mode:
        from benchmarks import dataset as data

        marker = data.read_marker()
        stale = args.rebuild or not data.usable(marker, data.FULL)
        if stale and _has_data():
            from django.db import connections

            connections.close_all()
            prepare_database(url, fresh=True)
            migrate()

    from benchmarks.figures import Report, goal_lines, meets, settings_summary

    report = Report()
    context = take_figures(report, args, small_mode)
    for line in goal_lines(report):
        log(line)
    output = args.output or (None if small_mode else DEFAULT_OUTPUT)
    if output is not None:
        payload = {
            "mode": "small" if small_mode else "full",
            "started_utc": began.isoformat(timespec="seconds"),
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(load_at_start),
            "database": settings_summary(),
            **context,
            "figures": [asdict(f) for f in report.figures],
            "goals": meets(report),
            "failures": report.failures,
            "details": report.details,
        }
        output.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        log(f"written   {output}")
    if temporary is not None:
        from django.db import connections

        connections.close_all()
        temporary.cleanup()
    if report.failures:
        log(f"{len(report.failures)} figure(s) could not be taken: " + "; ".join(report.failures))
        return 1
    return 0


def _has_data() -> bool:
    from django.db import connection

    from benchmarks.dataset import MARKER_TABLE
    from manufacturing.models import Batch

    return MARKER_TABLE in connection.introspection.table_names() or Batch.objects.exists()


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{quote(parts.password)}@", ":***@").replace(f":{parts.password}@", ":***@")
    return url
