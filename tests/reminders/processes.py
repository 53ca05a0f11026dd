"""Real Celery worker and beat processes for the reminder integration tests, and the mail they write.

The worker and beat run against the test database and Redis, with the file-based e-mail backend
writing into the test's temporary folder, so a test reads exactly what the worker sent.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from tests.integration.conftest import ROOT, worker_database_url

SEPARATOR = b"\n" + b"-" * 79 + b"\n"


@dataclass
class Celery:
    """A worker and beat sharing one environment; the worker can be killed and started again."""

    folder: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def mail_folder(self) -> Path:
        return self.folder / "mail"

    def start(self, name: str) -> subprocess.Popen[bytes]:
        role = name.split("-")[0]
        args = ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if role == "beat":
            args = ["--schedule", str(self.folder / "celerybeat-schedule")]
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lims", role, "--loglevel=INFO", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL: no cleanup, no acknowledgement, the database connection simply drops."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def worker_log(self) -> str:
        return "".join(log.read_text(errors="replace") for log in sorted(self.folder.glob("worker*.log")))

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )


@contextmanager
def celery_with_beat(folder: Path, *, sweep_seconds: int = 2, delay_ms: int = 0) -> Iterator[Celery]:
    """A worker and beat sweeping every few seconds; both stopped, and the queue emptied, at the end."""
    from lims.celery import app

    app.control.purge()
    (folder / "mail").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "STROMA_VAR_DIR": str(folder),
        "STROMA_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "STROMA_EMAIL_FILE_PATH": str(folder / "mail"),
        "STROMA_SWEEP_SECONDS": str(sweep_seconds),
        "STROMA_SWEEP_TEST_DELAY_MS": str(delay_ms),
        "STROMA_TIME_ZONE": settings.TIME_ZONE,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    celery = Celery(folder=folder, env=env)
    celery.start("worker")
    celery.start("beat")
    try:
        yield celery
    finally:
        celery.stop()
        with suppress(Exception):
            app.control.purge()
        print(celery.logs())


@dataclass(frozen=True)
class SentMail:
    to: str
    subject: str
    body: str
    notification_ids: tuple[int, ...]


def sent_mail(folder: Path) -> list[SentMail]:
    """Every message the file-based backend wrote, in the order the files were written."""
    found = []
    for path in sorted(folder.glob("*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        for chunk in path.read_bytes().split(SEPARATOR):
            if not chunk.strip():
                continue
            message = email.message_from_bytes(chunk, policy=email.policy.default)
            ids = tuple(int(i) for i in str(message.get("X-Stroma-Notifications", "")).split(",") if i)
            body = message.get_body(preferencelist=("plain",))
            found.append(
                SentMail(
                    to=str(message["To"]),
                    subject=str(message["Subject"]),
                    body=body.get_content() if body is not None else "",
                    notification_ids=ids,
                )
            )
    return found
