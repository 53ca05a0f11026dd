"""Audit history helpers: who and why on every change, the database guard, and audit-trail reading.

django-simple-history writes one history row per save. Stroma makes sure each row names a
person (or the system account, never nobody) and carries the reason given before the save;
editing history afterwards would itself be a falsification, so nothing here does it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from simple_history.models import HistoricalChanges
from simple_history.utils import get_history_manager_for_model

from lims.errors import DomainError

AUDITED_APPS = ("lims", "samples", "manufacturing", "api")


def system_user() -> Any:
    """The named account that Celery tasks and commands act as when no person does."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=settings.STROMA_SYSTEM_USERNAME,
        defaults={"first_name": "Stroma", "last_name": "system", "is_active": False},
    )
    return user


def require_reason(reason: str | None, *, what: str = "this change") -> str:
    """Refuse a GMP change that arrives without a reason: the audit trail must say why."""
    cleaned = (reason or "").strip()
    if not cleaned:
        raise DomainError(f"Please give a reason for {what}; it is kept in the audit trail.", code="reason_required")
    return cleaned


def save_audited(
    instance: models.Model,
    *,
    acting_user: Any,
    reason: str,
    update_fields: Iterable[str] | None = None,
) -> None:
    """Save with who and why written into the history row.

    The attributes django-simple-history reads are removed again after the save, so a later
    save of the same object can never inherit this person or this reason.
    """
    instance._history_user = acting_user  # type: ignore[attr-defined]
    instance._change_reason = reason  # type: ignore[attr-defined]
    try:
        instance.save(update_fields=list(update_fields) if update_fields is not None else None)
    finally:
        del instance._history_user  # type: ignore[attr-defined]
        del instance._change_reason  # type: ignore[attr-defined]


def history_models() -> list[type[models.Model]]:
    """Every history model of the audited apps (including users and groups)."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label in AUDITED_APPS and issubclass(model, HistoricalChanges):
            found.append(model)
    return found


# --- The database refuses to rewrite history (PostgreSQL) --------------------------------

GUARD_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION stroma_refuse_history_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'Stroma audit records are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def append_only_tables() -> list[str]:
    """History tables, plus the signature table: none of them may ever be rewritten."""
    tables = [model._meta.db_table for model in history_models()]
    tables.append("lims_signature")
    tables.append("lims_signaturefailure")
    return sorted(set(tables))


def install_history_guard(conn: BaseDatabaseWrapper | None = None) -> list[str]:
    """Create the trigger that raises on UPDATE or DELETE of every append-only table.

    Idempotent; runs after every migrate, so a history table added later is guarded too.
    TRUNCATE is left alone on purpose: test databases are flushed with it.
    """
    conn = conn or connection
    if conn.vendor != "postgresql":
        return []
    existing = set(conn.introspection.table_names())
    guarded = []
    with conn.cursor() as cursor:
        cursor.execute(GUARD_FUNCTION_SQL)
        for table in append_only_tables():
            if table not in existing:
                continue
            quoted = conn.ops.quote_name(table)
            cursor.execute(f"DROP TRIGGER IF EXISTS stroma_append_only ON {quoted}")
            cursor.execute(
                f"CREATE TRIGGER stroma_append_only BEFORE UPDATE OR DELETE ON {quoted} "
                "FOR EACH ROW EXECUTE FUNCTION stroma_refuse_history_change()"
            )
            guarded.append(table)
    return guarded


# --- Reading the audit trail --------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class AuditEntry:
    when: datetime
    who: str
    action: str
    reason: str
    changes: tuple[FieldChange, ...]
    history_id: int


_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def _display(value: object) -> str:
    if value is None:
        return ""
    return str(value)


def audit_entries(instance: models.Model) -> list[AuditEntry]:
    """The record's history, oldest first, each entry with its old → new values.

    The rows are read as plain tuples and each is compared with the one before, column by column:
    the same entries as simple-history's ``diff_against`` on model instances (the fields it compares,
    by name, in name order; the creation row listed by verbose name), at a fraction of the cost
    for a record with thousands of history rows.
    """
    manager = get_history_manager_for_model(instance)
    shape = _history_shape(manager.model)
    rows = (
        manager.filter(**{instance._meta.pk.attname: instance.pk})
        .order_by("history_date", "history_id")
        .values_list(*shape.columns, *_ROW_COLUMNS)
    )
    names = [name for name, _ in shape.compared]
    compared = [i for _, i in shape.compared]
    entries: list[AuditEntry] = []
    previous: list[Any] | None = None
    for row in rows:
        values = [row[i] for i in compared]
        if previous is None:
            changes = [FieldChange(name, "", _display(row[i])) for name, i in shape.created]
        elif values == previous:
            changes = []
        else:
            changes = [
                FieldChange(name, _display(old), _display(new))
                for name, old, new in zip(names, previous, values, strict=True)
                if old != new
            ]
        previous = values
        history_id, when, kind, reason, user_id, first, last, username = row[len(shape.columns) :]
        entries.append(
            AuditEntry(
                when=when,
                who=(f"{first} {last}".strip() or username) if user_id is not None else "(unknown)",
                action=_ACTIONS.get(kind, kind),
                reason=reason or "",
                changes=tuple(changes),
                history_id=history_id,
            )
        )
    return entries


_ROW_COLUMNS = (
    "history_id",
    "history_date",
    "history_type",
    "history_change_reason",
    "history_user_id",
    "history_user__first_name",
    "history_user__last_name",
    "history_user__username",
)


@dataclass(frozen=True)
class _HistoryShape:
    columns: tuple[str, ...]  # the history model's columns an entry reads, by attname
    created: tuple[tuple[str, int], ...]  # (verbose name, column) listed for the creation row
    compared: tuple[tuple[str, int], ...]  # (field name, column) compared row to row, by name


def _history_shape(history: type[models.Model]) -> _HistoryShape:
    """Which columns ``diff_against`` compares and the creation row lists, for one history model."""
    original = history.instance_type  # type: ignore[attr-defined]
    attnames = {f.attname for f in history._meta.concrete_fields}
    m2m = {f.name for f in getattr(history, "_history_m2m_fields", ())}
    diffed = {f.name for f in history.tracked_fields if f.editable} - m2m  # type: ignore[attr-defined]
    created = [(str(f.verbose_name), f.attname) for f in original._meta.fields if f.attname != "id"]
    created = [(name, attname) for name, attname in created if attname in attnames]
    compared = sorted((f.name, f.attname) for f in history._meta.concrete_fields if f.editable and f.name in diffed)
    columns = list(dict.fromkeys([attname for _, attname in created] + [attname for _, attname in compared]))
    at = {attname: i for i, attname in enumerate(columns)}
    return _HistoryShape(
        columns=tuple(columns),
        created=tuple((name, at[attname]) for name, attname in created),
        compared=tuple((name, at[attname]) for name, attname in compared),
    )


CSV_HEADER = ["history_id", "when_utc", "who", "action", "reason", "field", "old", "new"]


def audit_csv_rows(entries: list[AuditEntry]) -> Iterator[list[str]]:
    yield CSV_HEADER
    for entry in entries:
        when = entry.when.astimezone(UTC).isoformat()
        if not entry.changes:
            yield [str(entry.history_id), when, entry.who, entry.action, entry.reason, "", "", ""]
        for change in entry.changes:
            yield [
                str(entry.history_id),
                when,
                entry.who,
                entry.action,
                entry.reason,
                change.field,
                change.old,
                change.new,
            ]


def audit_csv(entries: list[AuditEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in audit_csv_rows(entries):
        writer.writerow(row)
    return buffer.getvalue()
