"""Write docs/validation/traceability.md from the requirement markers on the tests, or check it is current."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lims.traceability import MATRIX_PATH, ROOT, TraceabilityError, collect, gaps, render


class Command(BaseCommand):
    help = "Write the traceability matrix (docs/validation/traceability.md); --check fails if it is out of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; fail if the file on disk differs from what would be generated (for CI)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tests = collect(ROOT)
        except TraceabilityError as error:
            raise CommandError(str(error)) from error
        text = render(tests)
        target = ROOT / MATRIX_PATH
        missing = len(gaps(tests))
        if options["check"]:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                raise CommandError(
                    f"{MATRIX_PATH} is out of date: run `python manage.py traceability` and commit the file."
                )
            self.stdout.write(f"{MATRIX_PATH} is up to date ({len(tests)} tests, unmapped clauses: {missing}).")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {MATRIX_PATH} ({len(tests)} tests, unmapped clauses: {missing})")
