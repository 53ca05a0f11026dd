"""Write docs/validation/permission-matrix.md by running the test that requests every route as every role.

The matrix needs arranged records and real requests, so it is produced by
``tests/reliability/test_permission_matrix.py`` against the throwaway database pytest-django creates
(and drops); with ``STROMA_WRITE_VALIDATION=1`` the test writes the file, without it the test fails when
the committed file differs. This command only runs that test, so there is one way the matrix is made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lims.permission_matrix import MATRIX_PATH, ROOT, WRITE_ENV

TEST = "tests/reliability/test_permission_matrix.py"


class Command(BaseCommand):
    help = "Write the permission matrix (docs/validation/permission-matrix.md); --check fails if it is out of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; fail if the file on disk differs from what the requests show (for CI)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env = {**os.environ, WRITE_ENV: "0" if options["check"] else "1"}
        command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (pytest, arguments as a list)
        summary = [line for line in result.stdout.splitlines() if line.startswith("RELIABILITY")]
        if result.returncode != 0:
            raise CommandError(f"{TEST} failed; {MATRIX_PATH} may be out of date or a route is open:\n{result.stdout}")
        verb = "checked" if options["check"] else "wrote"
        self.stdout.write(f"{verb} {MATRIX_PATH}: " + (summary[-1] if summary else "no summary printed"))
