"""A backup restores into a fresh database with every table identical, history included (Annex 11 §7)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from lims.backup import connect, manifest_path, quote_identifier, require_postgresql, table_fingerprints
from lims.errors import DomainError
from tests.factories import restore_reference_data

SIGNATURE_TABLES = {"lims_signature", "lims_signaturefailure"}
GUARDED_TABLES = (
    "SELECT DISTINCT event_object_table FROM information_schema.triggers "
    "WHERE trigger_name = 'stroma_append_only' ORDER BY 1"
)


def _url(name: str) -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database beside the test database, created and dropped outside any transaction."""
    name = f"{connection.settings_dict['NAME']}_restored_{uuid.uuid4().hex[:8]}"
    with connect(connection.settings_dict, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
    try:
        yield _url(name)
    finally:
        with connect(connection.settings_dict, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")


def _backup(tmp_path: Path) -> Path:
    dump = tmp_path / "stroma.dump"
    out = io.StringIO()
    call_command("backup", str(dump), stdout=out)
    assert "Backup written" in out.getvalue()
    return dump


@pytest.fixture
def demo_backup(transactional_db, tmp_path: Path) -> Path:
    """The demo's records, committed, dumped with `manage.py backup`."""
    restore_reference_data()  # earlier transactional tests flushed what the data migrations filled
    call_command("load_demo", stdout=io.StringIO())
    return _backup(tmp_path)


@pytest.fixture
def small_backup(transactional_db, tmp_path: Path, subject) -> Path:
    """One enrolled subject with its study's signed approval: enough to show a refused restore."""
    return _backup(tmp_path)


def _restore(dump: Path, url: str) -> str:
    out = io.StringIO()
    call_command("restore", str(dump), "--database-url", url, stdout=out)
    return out.getvalue()


@pytest.mark.postgres
@pytest.mark.requirement("ANNEX11.7")
def test_a_restored_backup_is_identical_in_every_table_history_and_signatures_included(demo_backup, fresh_database):
    source = table_fingerprints(connection)
    manifest = json.loads(manifest_path(demo_backup).read_text())
    assert {name: (t["rows"], t["md5"]) for name, t in manifest["tables"].items()} == source

    assert "identical" in _restore(demo_backup, fresh_database)

    with psycopg.connect(fresh_database, autocommit=True) as restored:
        copy = table_fingerprints(restored)
    history = {name: count for name, (count, _) in source.items() if "historical" in name}
    signatures = {name: source[name][0] for name in SIGNATURE_TABLES}
    identical = copy == source
    print(
        f"RELIABILITY backup tables={len(source)} rows={sum(c for c, _ in source.values())} "
        f"history_tables={len(history)} history_rows={sum(history.values())} "
        f"signatures={signatures['lims_signature']} signature_failures={signatures['lims_signaturefailure']} "
        f"dump_bytes={demo_backup.stat().st_size} identical={identical}"
    )
    assert identical
    assert sum(history.values()) > 0
    assert signatures["lims_signature"] > 0
    assert {"samples_historicalsubject", "manufacturing_historicalbatch", *SIGNATURE_TABLES} <= set(copy)

    with pytest.raises(CommandError, match="is not empty"):
        _restore(demo_backup, fresh_database)

    with connection.cursor() as cursor:
        cursor.execute(GUARDED_TABLES)
        guarded = cursor.fetchall()
    with psycopg.connect(fresh_database, autocommit=True) as restored:
        assert restored.execute(GUARDED_TABLES).fetchall() == guarded, "the copy keeps its append-only guard"

    with psycopg.connect(fresh_database, autocommit=True) as restored:
        restored.execute(
            "UPDATE samples_subject SET status_reason = status_reason || '.' "
            "WHERE id = (SELECT min(id) FROM samples_subject)"
        )
        changed = table_fingerprints(restored)
    assert [name for name in source if changed[name] != source[name]] == ["samples_subject"], "one edit, one table"


@pytest.mark.postgres
@pytest.mark.requirement("ANNEX11.7")
def test_a_restore_that_differs_from_the_manifest_names_the_table_and_fails(small_backup, fresh_database):
    manifest = manifest_path(small_backup)
    data = json.loads(manifest.read_text())
    data["tables"]["lims_signature"]["md5"] = "0" * 32  # as if a signature had been lost on the way
    manifest.write_text(json.dumps(data))
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"differs from the manifest in 1 table\(s\)") as failed:
        call_command("restore", str(small_backup), "--database-url", fresh_database, stdout=out)
    assert failed.value.returncode == 1
    assert out.getvalue().strip().startswith("lims_signature: dumped (")


@pytest.mark.postgres
@pytest.mark.requirement("ANNEX11.7")
def test_restore_refuses_a_dump_that_does_not_match_its_manifest(small_backup, fresh_database):
    with small_backup.open("ab") as dump:
        dump.write(b"\0")
    with pytest.raises(CommandError, match="does not match its manifest"):
        _restore(small_backup, fresh_database)


@pytest.mark.requirement("ANNEX11.7")
def test_backup_refuses_sqlite_with_a_clear_message():
    with pytest.raises(DomainError, match="Backup and restore need PostgreSQL"):
        require_postgresql({"ENGINE": "django.db.backends.sqlite3", "NAME": "var/stroma.sqlite3"})
