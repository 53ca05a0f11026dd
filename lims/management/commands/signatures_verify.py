"""`manage.py signatures_verify`: re-verify every electronic signature; non-zero exit when any is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lims.integrity import CHUNK_SIZE, signatures_verify


class Command(BaseCommand):
    help = "Recompute the record and manifestation hash of every signature and list those changed after signing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="signatures read per query")

    def handle(self, *args: Any, **options: Any) -> None:
        report = signatures_verify(chunk_size=options["chunk_size"])
        for line in report.lines()[1:]:
            self.stdout.write(self.style.ERROR(line))
        if not report.intact:
            # CommandError makes manage.py exit 1, so cron or a monitoring probe sees the failure.
            raise CommandError(f"{report.summary()}: {len(report.broken)} signature(s) changed after signing")
        self.stdout.write(self.style.SUCCESS(report.summary()))
