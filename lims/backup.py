"""Backup and restore of the PostgreSQL database, with a manifest that proves a restore (Annex 11 §7).

A dump that cannot be shown to restore is not a backup. Next to every dump goes a manifest with
each table's row count and a content hash, taken in the same snapshot as the dump, so a restore
can be compared table by table — history and signature tables included — with what was dumped.

SQLite (the embedded demo) is refused: production runs on PostgreSQL, and the demo database is a
single file in var/ that can be copied while the demo is stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from lims.errors import DomainError

MANIFEST_FORMAT = 1

# Row text depends on these session settings (timestamps print in the session's zone): fix them so
# the source and the restored copy hash the same rows to the same text.
_SESSION = (
    "SET TIME ZONE 'UTC'",
    "SET DateStyle TO ISO, YMD",
    "SET IntervalStyle TO postgres",
    "SET extra_float_digits TO 1",
    "SET bytea_output TO hex",
)
# Django OPTIONS keys that are not libpq connection parameters.
_NOT_LIBPQ = {"isolation_level", "assume_role", "server_side_binding", "pool", "cursor_factory", "context"}

Fingerprints = dict[str, tuple[int, str]]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables_with_keys(cursor: Any) -> list[tuple[str, list[str]]]:
    cursor.execute(
        """
        SELECT c.relname,
               coalesce(array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), '{}')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE c.relkind IN ('r', 'p')
        GROUP BY c.relname
        ORDER BY c.relname
        """
    )
    return [(name, list(keys)) for name, keys in cursor.fetchall()]


def table_fingerprints(connection: Any) -> Fingerprints:
    """Row count and an md5 over every row, in primary-key order, of each table in the public schema.

    ``connection`` is a Django connection or a psycopg connection. Each row is hashed on its own and
    the row hashes are hashed together, so a table of millions of history rows never builds one
    giant string in the server's memory.
    """
    fingerprints: Fingerprints = {}
    with connection.cursor() as cursor:
        for statement in _SESSION:
            cursor.execute(statement)
        for table, keys in _tables_with_keys(cursor):
            order = ", ".join(f"t.{quote_identifier(k)}" for k in keys) if keys else "t::text"
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY {order}), '')) "  # noqa: S608
                f"FROM public.{quote_identifier(table)} AS t"
            )
            count, digest = cursor.fetchone()
            fingerprints[table] = (int(count), str(digest))
    return fingerprints


# --- Connecting and the PostgreSQL client tools --------------------------------------------------


def require_postgresql(settings_dict: Mapping[str, Any]) -> None:
    if "postgresql" not in settings_dict.get("ENGINE", ""):
        raise DomainError(
            "Backup and restore need PostgreSQL (DATABASE_URL=postgres://…); this database is "
            f"{settings_dict.get('ENGINE')}. The embedded SQLite demo is one file in var/: copy it "
            "while the demo is stopped.",
            code="not_postgresql",
        )


def libpq_params(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Connection parameters of a Django database, without the password (it travels in PGPASSWORD)."""
    params = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "host": settings_dict.get("HOST"),
        "port": str(settings_dict["PORT"]) if settings_dict.get("PORT") else None,
    }
    params.update({k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if k not in _NOT_LIBPQ})
    return {k: v for k, v in params.items() if v not in (None, "")}


def connect(settings_dict: Mapping[str, Any], **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        make_conninfo(**libpq_params(settings_dict)), password=settings_dict.get("PASSWORD") or None, **kwargs
    )


def _run_tool(tool: str, arguments: list[str], settings_dict: Mapping[str, Any]) -> None:
    executable = shutil.which(tool)
    if executable is None:
        raise DomainError(f"{tool} was not found on the PATH; install the PostgreSQL client tools.", code="no_tool")
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    conninfo = make_conninfo(**libpq_params(settings_dict))
    result = subprocess.run(  # noqa: S603 (a fixed tool; arguments are passed as a list, no shell)
        [executable, f"--dbname={conninfo}", *arguments], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DomainError(f"{tool} failed (exit {result.returncode}): {result.stderr.strip()}", code="tool_failed")


# --- The manifest ----------------------------------------------------------------------------------


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".manifest.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BackupResult:
    dump: Path
    manifest: Path
    fingerprints: Fingerprints

    @property
    def rows(self) -> int:
        return sum(count for count, _ in self.fingerprints.values())


def database_backup(*, settings_dict: Mapping[str, Any], dump: Path) -> BackupResult:
    """pg_dump (custom format) and the manifest, both from one exported snapshot.

    The fingerprints are computed inside the transaction whose snapshot pg_dump reads, so the
    manifest describes exactly the dumped data even while the site keeps writing.
    """
    require_postgresql(settings_dict)
    dump.parent.mkdir(parents=True, exist_ok=True)
    with connect(settings_dict) as snapshot:
        snapshot.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with snapshot.transaction(), snapshot.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            row = cursor.fetchone()
            assert row is not None
            _run_tool("pg_dump", ["--format=custom", f"--snapshot={row[0]}", f"--file={dump}"], settings_dict)
            fingerprints = table_fingerprints(snapshot)
    manifest = manifest_path(dump)
    manifest.write_text(
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "database": settings_dict.get("NAME"),
                "taken_at": datetime.now(UTC).isoformat(),
                "dump": dump.name,
                "dump_sha256": file_sha256(dump),
                "tables": {name: {"rows": count, "md5": digest} for name, (count, digest) in fingerprints.items()},
            },
            indent=2,
            sort_keys=True,
        )
    )
    return BackupResult(dump=dump, manifest=manifest, fingerprints=fingerprints)


# --- Restore ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    expected: Fingerprints
    found: Fingerprints

    @property
    def differing(self) -> list[str]:
        names = sorted(set(self.expected) | set(self.found))
        return [name for name in names if self.expected.get(name) != self.found.get(name)]

    @property
    def identical(self) -> bool:
        return not self.differing


def read_manifest(dump: Path) -> tuple[dict[str, Any], Fingerprints]:
    manifest = manifest_path(dump)
    if not manifest.is_file():
        raise DomainError(
            f"No manifest next to the dump ({manifest.name}); cannot verify a restore.", code="no_manifest"
        )
    data = json.loads(manifest.read_text())
    if data.get("format") != MANIFEST_FORMAT:
        raise DomainError(f"{manifest.name} has an unknown format {data.get('format')!r}.", code="bad_manifest")
    tables = {name: (int(t["rows"]), str(t["md5"])) for name, t in data["tables"].items()}
    return data, tables


def _existing_tables(target: psycopg.Connection[Any]) -> list[str]:
    with target.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def database_restore(*, dump: Path, target: Mapping[str, Any]) -> RestoreResult:
    """pg_restore into an empty database, then compare every table with the manifest."""
    require_postgresql(target)
    data, expected = read_manifest(dump)
    if file_sha256(dump) != data["dump_sha256"]:
        raise DomainError(
            f"{dump.name} does not match its manifest (damaged or replaced); not restored.", code="bad_dump"
        )
    with connect(target, autocommit=True) as conn:
        existing = _existing_tables(conn)
    if existing:
        raise DomainError(
            f"The target database {target.get('NAME')} is not empty ({len(existing)} tables, e.g. {existing[0]}); "
            "restore only into a freshly created, empty database.",
            code="target_not_empty",
        )
    _run_tool("pg_restore", ["--no-owner", "--exit-on-error", "--single-transaction", str(dump)], target)
    with connect(target, autocommit=True) as conn:
        found = table_fingerprints(conn)
    return RestoreResult(expected=expected, found=found)
