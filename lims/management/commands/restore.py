"""`manage.py restore <file> --database-url postgres://…/<empty>`: restore a backup and prove it identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lims.backup import database_restore
from lims.errors import DomainError


class Command(BaseCommand):
    help = (
        "Restore a dump made by `backup` into an EMPTY PostgreSQL database, then compare every table's "
        "row count and content hash with the dump's manifest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the dump written by `manage.py backup`")
        parser.add_argument(
            "--database-url",
            required=True,
            help="the empty target database, e.g. postgres://stroma@db.internal:5432/stroma_restored",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = dj_database_url.parse(options["database_url"])
        try:
            result = database_restore(dump=options["file"], target=target)
        except DomainError as refused:
            raise CommandError(refused.message) from refused
        rows = sum(count for count, _ in result.found.values())
        if not result.identical:
            for name in result.differing:
                self.stdout.write(
                    self.style.ERROR(f"  {name}: dumped {result.expected.get(name)}, restored {result.found.get(name)}")
                )
            raise CommandError(f"restore differs from the manifest in {len(result.differing)} table(s)")
        self.stdout.write(
            self.style.SUCCESS(
                f"identical: {len(result.found)} tables, {rows} rows match the manifest of {options['file']}"
            )
        )
