"""`python -m benchmarks --small` takes every figure on tiny data, so that `make bench` cannot rot unnoticed.

Speed is deliberately not asserted: a timed test fails on a busy machine and proves nothing. That every
figure is printed as a number is asserted, which means every measured code path ran (pages, scan,
services with and without history, the sweep, the label sheet, the audit CSV, gunicorn and the load).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("flask", "batch", "subject", "admin_batch_changelist", "admin_batch_change")
FIGURES = [
    "scan_ratio",
    "qr_symbol_median_ms",
    "history_overhead",
    "sweep_seconds_100k",
    "sweep_seconds_10k",
    "sweep_scaling",
    "label_sheet_96_seconds",
    "throughput_ratio",
    "audit_export_10k_seconds",
    *[f"page_queries_{page}_{size}" for page in PAGES for size in ("small", "large")],
]


def _database_url(tmp_path: Path) -> str:
    """The test database itself on PostgreSQL; on SQLite (in memory) a migrated copy of it in a file."""
    if connection.vendor == "sqlite":
        copy = tmp_path / "bench.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(copy)
        try:
            connection.connection.backup(target)
        finally:
            target.close()
        return f"sqlite:///{copy}"
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # On PostgreSQL the run commits to the test database, so the test must flush it afterwards.
    request.getfixturevalue("transactional_db" if connection.vendor == "postgresql" else "db")
    return _database_url(tmp_path)


def _figures(stdout: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            _, name, value, unit = line.split(" ", 3)
            found[name] = (value, unit.split("  #")[0])
    return found


def test_the_small_benchmark_prints_every_figure_as_a_number(database: str, tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--small", "--database-url", database, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = _figures(done.stdout)
    missing = [name for name in FIGURES if name not in figures]
    assert not missing, f"not printed: {missing}\n{done.stdout[-3000:]}"
    not_numbers = {name: figures[name] for name in FIGURES if not _is_number(figures[name][0])}
    assert not not_numbers, f"not numbers: {not_numbers}\n{done.stderr[-3000:]}"

    saved: dict[str, Any] = json.loads(output.read_text())
    assert saved["mode"] == "small"
    assert {f["name"]: f["value"] for f in saved["figures"]}.keys() >= set(FIGURES)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
