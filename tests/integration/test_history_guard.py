"""On PostgreSQL the database itself refuses to rewrite audit records (21 CFR 11.10(e))."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from lims.audit import append_only_tables

pytestmark = pytest.mark.postgres


def _refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    return str(refused.value)


@pytest.mark.requirement("CFR11.10e", "ANNEX11.7", "ANNEX11.9")
def test_update_and_delete_on_a_history_table_are_refused(subject):
    assert "append-only" in _refused("UPDATE samples_historicalsubject SET sex = 'M'")
    assert "append-only" in _refused("DELETE FROM samples_historicalsubject")
    assert subject.history.count() == 1


@pytest.mark.requirement("CFR11.70", "ANNEX11.7", "ANNEX11.14")
def test_signatures_cannot_be_rewritten(subject, clinician):
    from lims.models import Label
    from lims.signatures import signature_apply

    label = Label.objects.get(object_id=subject.pk)
    signature_apply(record=label, signer=clinician, meaning="witnessed", reason="seen")
    assert "append-only" in _refused("UPDATE lims_signature SET printed_name = 'Somebody else'")
    assert "append-only" in _refused("DELETE FROM lims_signature")


@pytest.mark.requirement("CFR11.10e", "ANNEX11.7")
def test_every_append_only_table_has_the_guard(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_object_table FROM information_schema.triggers "
            "WHERE trigger_name = 'stroma_append_only' AND event_manipulation IN ('UPDATE', 'DELETE') "
            "GROUP BY event_object_table HAVING count(*) = 2"
        )
        guarded = {row[0] for row in cursor.fetchall()}
    assert set(append_only_tables()) <= guarded
