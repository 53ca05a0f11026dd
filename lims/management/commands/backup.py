"""`manage.py backup <file>`: pg_dump the database and write `<file>.manifest.json` beside it (docs/deployment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from lims.backup import database_backup
from lims.errors import DomainError


class Command(BaseCommand):
    help = "Dump the PostgreSQL database (pg_dump --format=custom) with a manifest of row counts and content hashes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="where to write the dump, e.g. /backups/stroma-2026-11-25.dump")
        parser.add_argument("--database", default="default", help="the Django database alias to dump")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = database_backup(settings_dict=connections[options["database"]].settings_dict, dump=options["file"])
        except DomainError as refused:
            raise CommandError(refused.message) from refused
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup written: {result.dump} ({len(result.fingerprints)} tables, {result.rows} rows); "
                f"manifest {result.manifest}"
            )
        )
