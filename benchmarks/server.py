"""Throughput under gunicorn: scans per second ÷ bare requests per second, same server, same database.

gunicorn (2 sync workers, the project's WSGI application with :mod:`benchmarks.settings`) listens on
a free port of 127.0.0.1 only; :mod:`benchmarks.load` runs in a second process with a fixed number of
requests and at most eight threads, and both are stopped by their process id when the figure is taken.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.crypto import get_random_string

from benchmarks.figures import Report, bare_url, logged_in_client
from lims import labels
from lims.models import User

ROOT = Path(__file__).absolute().parent.parent
WORKERS = 2
CSRF_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before it served a request")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer within 90 s")


@contextmanager
def gunicorn(probe_path: str, log_dir: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "120",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log_dir / "gunicorn.log"),
        "--no-control-socket",
        "lims.wsgi:application",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        try:
            _ready(port, probe_path, process)
        except RuntimeError as exc:
            log = log_dir / "gunicorn.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{exc}; gunicorn's log ends: {tail}") from exc
        yield port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def sessions(user: User, count: int) -> list[dict[str, str]]:
    """One logged-in session (and CSRF secret) per client thread, as each tablet has its own."""
    found = []
    for _ in range(count):
        client = logged_in_client(user)
        found.append(
            {
                "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "csrf": get_random_string(32, CSRF_CHARS),
            }
        )
    return found


def _load(spec: dict[str, Any], spec_path: Path, mode: str, requests: int) -> dict[str, Any]:
    spec_path.write_text(json.dumps({**spec, "mode": mode, "requests": requests}), encoding="utf-8")
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks.load", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} {mode} request(s) failed under load: {result['first_error']}")
    return result


def throughput(report: Report, user: User, codes: list[str], *, requests: int, concurrency: int) -> None:
    """Two rounds of bare then scan, each round half the requests; rates are totals over both rounds."""
    targets = [{"bare": bare_url(code), "payload": labels.label_payload(code)} for code in codes]
    with tempfile.TemporaryDirectory(prefix="stroma-bench-") as folder:
        spec_path = Path(folder) / "load.json"
        spec = {
            "host": "127.0.0.1",
            "targets": targets,
            "sessions": sessions(user, concurrency),
            "session_cookie": settings.SESSION_COOKIE_NAME,
            "csrf_cookie": settings.CSRF_COOKIE_NAME,
            "concurrency": concurrency,
        }
        with gunicorn(targets[0]["bare"], Path(folder)) as port:
            spec["port"] = port
            for mode in ("bare", "scan"):  # warm both workers: templates, caches, connections
                _load(spec, spec_path, mode, max(4, concurrency * 4))
            totals = {"bare": [0, 0.0], "scan": [0, 0.0]}
            half = max(1, requests // 2)
            for _ in range(2):
                for mode in ("bare", "scan"):
                    result = _load(spec, spec_path, mode, half)
                    totals[mode][0] += result["completed"]
                    totals[mode][1] += result["seconds"]
    bare = totals["bare"][0] / totals["bare"][1]
    scans = totals["scan"][0] / totals["scan"][1]
    report.details["throughput"] = {
        "workers": WORKERS,
        "concurrency": concurrency,
        "requests_per_kind": int(totals["bare"][0]),
    }
    report.add("throughput_ratio", round(scans / bare, 3), "ratio")
    report.add("scan_throughput", round(scans, 1), "scans/s")
    report.add("bare_throughput", round(bare, 1), "requests/s")
