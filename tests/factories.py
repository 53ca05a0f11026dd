"""factory_boy factories: arrange a test in one line, through the services where a rule applies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import factory
from django.apps import apps as django_apps
from django.contrib.auth.models import Group

from lims.models import User
from lims.roles import sync_roles
from lims.signatures import SignatureRequest
from samples.models import Study
from samples.services import protocol_approve, study_create

DEMO_PASSWORD = "correct-horse-battery-7"
REFERENCE = Path(__file__).resolve().parents[1] / "samples" / "data" / "nct03333681-protocol.json"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", DEMO_PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if extracted:
            if not Group.objects.filter(name=extracted).exists():
                # Transactional tests flush the tables that the data migration filled.
                sync_roles(django_apps)
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


def approved_study(lab_manager: User, password: str) -> Study:
    """The demo study, created and approved through the services as the lab manager would."""
    existing = Study.objects.filter(code="RA-MSC").first()
    if existing is not None:
        return existing
    data = json.loads(REFERENCE.read_text())
    protocol = study_create(acting_user=lab_manager, data=data, reason="study set up for the test")
    protocol_approve(
        protocol=protocol,
        acting_user=lab_manager,
        signature=SignatureRequest(
            username=lab_manager.username, password=password, meaning="approved", reason="protocol approved"
        ),
    )
    return protocol.study


def subject_dates(age_years: int = 45, screening: dt.date | None = None) -> dict[str, dt.date]:
    screening = screening or dt.date.today() - dt.timedelta(days=10)
    return {
        "date_of_birth": screening.replace(year=screening.year - age_years) - dt.timedelta(days=30),
        "screening_date": screening,
        "consent_date": screening - dt.timedelta(days=1),
    }


def restore_reference_data() -> None:
    """Transactional tests flush what the data migrations filled; the demo loader needs it back."""
    import importlib

    from django.apps import apps

    for module, function in (
        ("lims.migrations.0002_roles_system_account_history_guard", "create_roles_and_system_account"),
        ("manufacturing.migrations.0002_reference_vessels_and_reagents", "load"),
    ):
        getattr(importlib.import_module(module), function)(apps, None)
