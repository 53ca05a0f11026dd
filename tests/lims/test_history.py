"""Audit history on every record: who, what, when and why (21 CFR 11.10(e))."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from lims.audit import AUDITED_APPS, audit_entries, history_models, system_user
from lims.models import Label, Signature
from samples.models import Subject


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9", "ANNEX11.12")
def test_every_concrete_model_of_the_three_apps_keeps_history():
    concrete = [
        m
        for m in apps.get_models()
        if m._meta.app_label in AUDITED_APPS and not m._meta.model_name.startswith("historical")
    ]
    assert concrete, "no models found"
    missing = [m._meta.label for m in concrete if not hasattr(m, "history")]
    assert missing == []
    assert hasattr(Group, "history"), "group membership decides authority, so groups are audited too"


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_registering_a_subject_records_who_and_why(subject, clinician):
    row = Subject.history.get(id=subject.pk)
    assert row.history_user == clinician
    assert row.history_change_reason == "subject registered at screening"
    label_row = Label.history.get(object_id=subject.pk)
    assert label_row.history_user == clinician
    assert label_row.history_change_reason.startswith("label WB-")


@pytest.mark.requirement("CFR11.10e")
def test_a_save_without_an_acting_user_is_attributed_to_the_system_account(study):
    study.title = "Changed by a maintenance script"
    study.save()
    latest = study.history.latest()
    assert latest.history_user == system_user()
    assert latest.history_change_reason.startswith("system:")


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
def test_the_audit_trail_lists_old_and_new_values_with_the_reason(subject, clinician):
    subject.status = "withdrawn"
    subject._history_user = clinician
    subject._change_reason = "subject withdrew consent"
    subject.save()
    entries = audit_entries(subject)
    assert [e.action for e in entries] == ["created", "changed"]
    change = entries[-1]
    assert change.reason == "subject withdrew consent"
    assert change.who == clinician.printed_name
    assert ("status", "screening", "withdrawn") in [(c.field, c.old, c.new) for c in change.changes]


@pytest.mark.requirement("CFR11.10e", "CFR11.70", "ANNEX11.7")
def test_signatures_are_among_the_append_only_tables():
    from lims.audit import append_only_tables

    tables = append_only_tables()
    assert Signature._meta.db_table in tables
    assert all(m._meta.db_table in tables for m in history_models())


@pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
@pytest.mark.django_db
def test_history_cannot_be_reverted_or_edited_in_the_admin(settings):
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True
    assert settings.SIMPLE_HISTORY_EDIT is False
