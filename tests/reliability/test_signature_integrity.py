"""The nightly signature check finds a record changed behind the application's back (21 CFR 11.70, Annex 11 §14)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from lims.celery import SIGNATURE_CHECK_SITE_TIME, app, site_time_in_utc
from lims.integrity import MANIFESTATION_CHANGED, RECORD_CHANGED, RECORD_MISSING, signatures_verify
from lims.models import ContainerCondition, CustodyEvent, Label, Signature
from lims.services import custody_record
from lims.signatures import SignatureRequest, record_sign
from lims.tasks import signatures_verify_task

pytestmark = pytest.mark.requirement("CFR11.70", "ANNEX11.14")

HANDOVERS = [("Clinic printer", "Clara Clinician", "Clinic"), ("Clara Clinician", "Courier", "Ward 3")]


@pytest.fixture
def witnessed(subject, clinician, qa_officer, password) -> list[CustodyEvent]:
    """Two hand-overs of the subject's blood tube, each witnessed by QA's signature."""
    label = Label.objects.get(code=f"WB-{subject.code}")
    events = []
    for handed_over_by, received_by, location in HANDOVERS:
        event = custody_record(
            label=label,
            acting_user=clinician,
            handed_over_by=handed_over_by,
            received_by=received_by,
            location=location,
            occurred_at=timezone.now(),
            temperature_c="21.0",
            container_condition=ContainerCondition.INTACT,
        )
        record_sign(
            record=event,
            acting_user=qa_officer,
            request=SignatureRequest(
                username=qa_officer.username, password=password, meaning="witnessed", reason="I saw the hand-over"
            ),
            allowed_meanings={"witnessed"},
            required_permission="lims.sign_witnessed",
        )
        events.append(event)
    return events


def _signature_of(record: CustodyEvent) -> Signature:
    return Signature.objects.get(content_type__model="custodyevent", object_id=record.pk)


def _verify_command(*args: str) -> str:
    out = io.StringIO()
    call_command("signatures_verify", *args, stdout=out)
    return out.getvalue()


def test_untouched_records_pass_the_check_and_the_command_exits_zero(witnessed):
    total = Signature.objects.count()
    assert total == 3, "the protocol approval and two witnessed hand-overs"
    output = _verify_command("--chunk-size", "2")
    print(f"RELIABILITY signatures untouched checked={total} broken=0 exit=0")
    assert f"signatures checked={total} valid={total} broken=0" in output


def test_a_record_updated_behind_the_applications_back_is_the_one_reported(witnessed, qa_officer):
    changed = witnessed[1]
    history_before = changed.history.count()
    CustodyEvent.objects.filter(pk=changed.pk).update(temperature_c=Decimal("30.0"))
    assert changed.history.count() == history_before, "a raw update writes no history: only the hash can tell"

    with pytest.raises(CommandError) as failed:
        _verify_command("--chunk-size", "2")
    assert failed.value.returncode == 1
    assert "checked=3 valid=2 broken=1" in str(failed.value)

    [broken] = signatures_verify().broken
    print(f"RELIABILITY signatures tampered checked=3 broken=1 exit={failed.value.returncode} -> {broken.line()}")
    assert broken.signature_id == _signature_of(changed).pk
    assert broken.record.startswith(f"lims.custodyevent #{changed.pk} (WB-")
    assert broken.signer == f"Quinn Assurance ({qa_officer.username})"
    assert broken.meaning == "Witnessed"
    assert broken.signed_at == _signature_of(changed).signed_at
    assert broken.differs == (RECORD_CHANGED,)


def _rewrite_signature_row(signature: Signature, **values: object) -> None:
    """What someone with the database owner's rights could do: switch off the guard and rewrite the row."""
    guarded = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if guarded:
            # Deferred foreign-key checks from the fixture's inserts must fire before the table can be altered.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE lims_signature DISABLE TRIGGER stroma_append_only")
        Signature.objects.filter(pk=signature.pk).update(**values)
        if guarded:
            cursor.execute("ALTER TABLE lims_signature ENABLE TRIGGER stroma_append_only")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_a_rewritten_signature_is_reported_as_a_changed_manifestation(witnessed):
    signature = _signature_of(witnessed[0])
    _rewrite_signature_row(signature, printed_name="Somebody Else")
    [broken] = signatures_verify().broken
    assert broken.signature_id == signature.pk
    assert broken.differs == (MANIFESTATION_CHANGED,)


def test_a_signed_record_that_disappeared_is_reported(witnessed):
    gone = witnessed[0]
    CustodyEvent.objects.filter(pk=gone.pk).delete()
    report = signatures_verify()
    assert [(b.signature_id, b.differs) for b in report.broken] == [(_signature_of(gone).pk, (RECORD_MISSING,))]
    assert report.valid == 2


def test_the_nightly_task_tells_qa_only_when_something_is_broken(witnessed, qa_officer):
    assert signatures_verify_task() == {"checked": 3, "valid": 3, "broken": 0, "mails": 0}
    assert mail.outbox == []

    CustodyEvent.objects.filter(pk=witnessed[0].pk).update(note="added later")
    assert signatures_verify_task() == {"checked": 3, "valid": 2, "broken": 1, "mails": 1}
    [message] = mail.outbox
    assert message.to == [qa_officer.email]
    assert message.subject == "[Stroma] Signature check: 1 record(s) changed after signing"
    assert f"lims.custodyevent #{witnessed[0].pk}" in message.body
    assert "changed after signing: record content" in message.body


def test_beat_runs_the_check_every_night_at_half_past_two_site_time(settings):
    entry = app.conf.beat_schedule["signatures-verify"]
    assert entry["task"] == "lims.tasks.signatures_verify_task"
    hour, minute = site_time_in_utc(SIGNATURE_CHECK_SITE_TIME, settings.TIME_ZONE)
    assert entry["schedule"].hour == {hour}
    assert entry["schedule"].minute == {minute}
    assert site_time_in_utc(dt.time(2, 30), "Asia/Tehran") == (23, 0)
    assert site_time_in_utc(dt.time(2, 30), "Europe/Berlin", on=dt.date(2026, 1, 15)) == (1, 30)
    assert site_time_in_utc(dt.time(2, 30), "Europe/Berlin", on=dt.date(2026, 7, 15)) == (0, 30)
