"""Load the demo: one account per role, the study NCT03333681 and records to click through.

Safe to run again: what exists is kept, nothing is duplicated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from lims.audit import stamp, system_user
from lims.models import ContainerCondition, Label, LabelKind, User
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from lims.services import custody_record
from samples.models import Study, Subject
from samples.services import subject_register

# Demo accounts only: printed on start so that anyone trying the demo can log in.
DEMO_USERS = [
    ("olivia", "Olivia", "Operator", OPERATOR, False),
    ("oscar", "Oscar", "Operator", OPERATOR, False),
    ("quinn", "Quinn", "Assurance", QA, True),
    ("clara", "Clara", "Clinician", CLINICIAN, False),
    ("colin", "Colin", "Clinician", CLINICIAN, False),
    ("maria", "Maria", "Manager", LAB_MANAGER, True),
]
DEMO_PASSWORD = "stroma-demo-2026"  # noqa: S105 (a published demo password, never used outside the demo)

STUDY = {
    "code": "RA-MSC",
    "registry_id": "NCT03333681",
    "title": (
        "Evaluation of Mesenchymal Stem Cell Therapy Effects on the Cellular and Humoral Immune Responses and "
        "Additionally Study on the Effect of Chemokines in Homing of the Immune Cells in Refractory Rheumatoid "
        "Arthritis Patients"
    ),
    "phase": "1",
    "sponsor": "Mashhad University of Medical Sciences",
    "planned_enrolment": 15,
}


class Command(BaseCommand):
    help = "Load demo users, the NCT03333681 study and example records (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = self._users()
            study = self._study(users["maria"])
            self._subjects(study, users)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/ as:"))
        for username, first, last, role, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<8} {DEMO_PASSWORD}   {first} {last}, {role}")

    def _users(self) -> dict[str, User]:
        users = {}
        for username, first, last, role, staff in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(
                    username=username,
                    first_name=first,
                    last_name=last,
                    is_staff=staff,
                    email=f"{username}@stroma.invalid",
                )
                user.set_password(DEMO_PASSWORD)
                stamp(user, acting_user=system_user(), reason="demo account created")
                user.save()
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _study(self, manager: User) -> Study:
        study = Study.objects.filter(code=STUDY["code"]).first()
        if study is None:
            study = Study(**STUDY)
            stamp(study, acting_user=manager, reason="demo study NCT03333681 loaded")
            study.save()
        return study

    def _subjects(self, study: Study, users: dict[str, User]) -> None:
        if Subject.objects.filter(study=study).exists():
            return
        today = timezone.localdate()
        for age, days_ago in ((42, 40), (57, 20), (36, 5)):
            screening = today - dt.timedelta(days=days_ago)
            subject_register(
                study=study,
                acting_user=users["clara"],
                sex="F",
                date_of_birth=screening.replace(year=screening.year - age) - dt.timedelta(days=17),
                screening_date=screening,
                consent_date=screening - dt.timedelta(days=2),
            )
        first = Subject.objects.filter(study=study).order_by("sequence").first()
        assert first is not None
        wristband = Label.objects.get(code=f"WB-{first.code}", kind=LabelKind.WRISTBAND)
        custody_record(
            label=wristband,
            acting_user=users["clara"],
            handed_over_by="Clinic label printer",
            received_by="Clara Clinician",
            location="Rheumatology clinic, room 2",
            occurred_at=timezone.now() - dt.timedelta(days=39),
            temperature_c="21.0",
            container_condition=ContainerCondition.INTACT,
            note="Wristband fitted on the subject's left wrist.",
        )
