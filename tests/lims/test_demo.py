"""`manage.py load_demo` gives every page something to show, through the real services."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from manufacturing.models import Batch, BatchStatus, FinalProduct, FlaskStatus, InfusionStatus, ProductStatus
from manufacturing.selectors import flask_due
from manufacturing.services.release import release_blockers
from samples.models import Aspirate, AspirateStatus, Study, Subject


@pytest.fixture
def demo(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)  # running it twice adds nothing


def test_the_demo_shows_every_step_from_enrolment_to_infusion(demo):
    study = Study.objects.get(registry_id="NCT03333681")
    assert study.protocol_versions.get().status == "approved"
    assert {s.status for s in Subject.objects.all()} >= {"screening", "enrolled"}
    assert Subject.objects.count() >= 3
    assert Aspirate.objects.filter(status=AspirateStatus.IN_TRANSIT).count() == 1

    in_culture = list(Batch.objects.filter(status=BatchStatus.IN_CULTURE).order_by("seeded_at"))
    assert [b.culture_day() for b in in_culture] == [28, 12]
    mid = in_culture[1]
    assert mid.flasks.filter(status=FlaskStatus.PASSAGED).exists()
    p1 = mid.flasks.filter(passage_number=1).prefetch_related("events").first()
    assert any(d.what == "Feed" and d.overdue for d in flask_due(p1, list(p1.events.all())))

    testing = list(Batch.objects.filter(status=BatchStatus.RELEASE_TESTING))
    blockers = sorted(len(release_blockers(b, decision=BatchStatus.RELEASED)) for b in testing)
    assert blockers[0] == 0, "one batch is ready for release"
    assert blockers[1] > 0, "one batch is blocked by an out-of-specification result"
    assert FinalProduct.objects.get(status=ProductStatus.AT_WARD).batch.status == BatchStatus.RELEASED
    infused = FinalProduct.objects.get(status=ProductStatus.INFUSED)
    assert infused.infusion.status == InfusionStatus.COMPLETED


def test_the_infused_demo_subjects_timeline_runs_from_the_aspirate_a_month_ago_to_the_infusion(demo):
    from manufacturing.timeline import subject_timeline

    subject = FinalProduct.objects.get(status=ProductStatus.INFUSED).batch.subject
    events = subject_timeline(subject)
    whats = [e.what for e in events]
    collected = next(i for i, w in enumerate(whats) if w.endswith("collected"))
    ended = next(i for i, w in enumerate(whats) if w.startswith("Infusion ended"))
    assert collected < ended
    assert (events[ended].at - events[collected].at).days >= 29
    assert [e.at for e in events] == sorted(e.at for e in events)
