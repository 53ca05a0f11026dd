"""Load the demo: one account per role, the study NCT03333681 and records to click through.

Everything goes through the same services as the pages, with the demo accounts as the actors.
Safe to run again: when the demo study exists, nothing is added.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from lims.audit import save_audited, system_user
from lims.labels import label_payload
from lims.models import ContainerCondition, Label, User
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from lims.services import custody_record
from lims.signatures import SignatureRequest
from samples import services as samples
from samples.models import Study, Subject

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
REFERENCE = Path(__file__).resolve().parents[3] / "samples" / "data" / "nct03333681-protocol.json"

# Treg % of CD4+ at baseline and month 6 for the demo's followed-up subjects (illustrative values).
DEMO_TREG = [
    (Decimal("4.2"), Decimal("6.3")),
    (Decimal("3.8"), Decimal("5.1")),
    (Decimal("5.0"), Decimal("4.6")),
    (Decimal("3.1"), Decimal("4.9")),
]
DEMO_DAS28 = [
    ((8, 6, "38", 62), (3, 2, "18", 30)),
    ((10, 7, "45", 70), (5, 3, "25", 41)),
    ((6, 4, "30", 55), (6, 5, "33", 52)),
    ((12, 9, "52", 78), (4, 2, "20", 35)),
]


class Command(BaseCommand):
    help = "Load demo users, the NCT03333681 study and example records (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = self._users()
            if not Study.objects.filter(registry_id="NCT03333681").exists():
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
                save_audited(user, acting_user=system_user(), reason="demo account created")
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _sign(self, user: User, meaning: str, reason: str) -> SignatureRequest:
        return SignatureRequest(username=user.username, password=DEMO_PASSWORD, meaning=meaning, reason=reason)

    def _study(self, manager: User) -> Study:
        protocol = samples.study_create(
            acting_user=manager,
            data=json.loads(REFERENCE.read_text()),
            reason="demo study NCT03333681 set up from its registry record",
        )
        samples.protocol_approve(
            protocol=protocol,
            acting_user=manager,
            signature=self._sign(manager, "approved", "protocol v1 approved for use"),
        )
        return protocol.study

    def _enrol(self, study: Study, clara: User, *, age: int, screened_days_ago: int) -> Subject:
        screening = timezone.localdate() - dt.timedelta(days=screened_days_ago)
        subject = samples.subject_register(
            study=study,
            acting_user=clara,
            sex="F",
            screening_date=screening,
            date_of_birth=screening.replace(year=screening.year - age) - dt.timedelta(days=17),
            consent_date=screening - dt.timedelta(days=2),
        )
        samples.subject_answer_eligibility(
            subject=subject,
            acting_user=clara,
            answers={c.pk: c.kind == "inclusion" for c in subject.protocol.criteria.all()},
        )
        return samples.subject_confirm_eligibility(
            subject=subject,
            acting_user=clara,
            signature=self._sign(clara, "eligibility_confirmed", "checklist reviewed with the subject's records"),
        )

    def _aspirate(self, subject: Subject, users: dict[str, User], *, days_ago: float, receive: bool) -> None:
        collected = timezone.now() - dt.timedelta(days=days_ago)
        aspirate = samples.aspirate_collect(
            subject=subject, acting_user=users["clara"], collected_at=collected, volume_ml="18.5"
        )
        aspirate = samples.aspirate_dispatch(
            aspirate=aspirate,
            acting_user=users["clara"],
            courier="Hamid (courier)",
            temperature_c="21.0",
            dispatched_at=collected + dt.timedelta(minutes=20),
        )
        if receive:
            samples.aspirate_receive(
                aspirate=aspirate,
                acting_user=users["olivia"],
                scanned_payload=label_payload(aspirate.code),
                courier="Hamid (courier)",
                received_at=collected + dt.timedelta(hours=2),
                temperature_c="20.5",
                container_intact=True,
            )

    def _subjects(self, study: Study, users: dict[str, User]) -> None:
        clara = users["clara"]
        followed = [
            self._enrol(study, clara, age=age, screened_days_ago=240 + n * 7) for n, age in enumerate((42, 51, 38, 57))
        ]
        for subject, (base, month6), (das_base, das_m6) in zip(followed, DEMO_TREG, DEMO_DAS28, strict=True):
            self._aspirate(subject, users, days_ago=225, receive=True)
            self._follow_up(subject, clara, baseline=base, month6=month6, das=(das_base, das_m6))
        self._batches(study, users)
        in_transit = self._enrol(study, clara, age=39, screened_days_ago=6)
        self._aspirate(in_transit, users, days_ago=0.1, receive=False)
        samples.subject_register(
            study=study,
            acting_user=clara,
            sex="F",
            date_of_birth=timezone.localdate().replace(year=timezone.localdate().year - 47),
            screening_date=timezone.localdate(),
            consent_date=timezone.localdate(),
        )
        wristband = Label.objects.get(code=f"WB-{in_transit.code}")
        custody_record(
            label=wristband,
            acting_user=clara,
            handed_over_by="Clinic label printer",
            received_by="Clara Clinician",
            location="Rheumatology clinic, room 2",
            occurred_at=timezone.now() - dt.timedelta(days=6),
            temperature_c="21.0",
            container_condition=ContainerCondition.INTACT,
            note="Wristband fitted on the left wrist.",
        )

    def _batches(self, study: Study, users: dict[str, User]) -> None:
        from manufacturing import demo

        clara, olivia = users["clara"], users["olivia"]
        used = demo.demo_lots(olivia, users["quinn"])
        demo.demo_specification(study, users["quinn"], DEMO_PASSWORD)

        def aspirate(age: int, days_ago: float) -> Any:
            subject = self._enrol(study, clara, age=age, screened_days_ago=int(days_ago) + 8)
            return demo.accepted_aspirate(subject, clara, olivia, days_ago=days_ago)

        demo.grown_batch(aspirate(45, 12.2), olivia, used, culture_days=12, passage_on_day=8)
        demo.grown_batch(aspirate(49, 28.2), olivia, used, culture_days=28, passage_on_day=10)
        ready = demo.grown_batch(aspirate(41, 29.2), olivia, used, culture_days=29, passage_on_day=10)
        demo.harvest_and_test(ready, olivia)
        blocked = demo.grown_batch(aspirate(53, 30.2), olivia, used, culture_days=30, passage_on_day=11)
        demo.harvest_and_test(blocked, olivia, oos=True)
        at_ward = demo.grown_batch(aspirate(37, 29.4), olivia, used, culture_days=29, passage_on_day=10)
        demo.release_and_bring_to_ward(demo.harvest_and_test(at_ward, olivia), users=users, password=DEMO_PASSWORD)
        infused = demo.grown_batch(aspirate(58, 29.6), olivia, used, culture_days=29, passage_on_day=10)
        product = demo.release_and_bring_to_ward(
            demo.harvest_and_test(infused, olivia), users=users, password=DEMO_PASSWORD
        )
        demo.infuse(product, users=users, password=DEMO_PASSWORD)

    def _follow_up(
        self,
        subject: Subject,
        clara: User,
        *,
        baseline: Decimal,
        month6: Decimal,
        das: tuple[tuple[int, int, str, int], tuple[int, int, str, int]],
    ) -> None:
        visits = {v.month: v for v in subject.protocol.visits.all()}
        treg = subject.protocol.analytes.get(primary=True)
        start = timezone.now() - dt.timedelta(days=222)
        for month, value, (tender, swollen, esr, vas) in ((0, baseline, das[0]), (6, month6, das[1])):
            collected = start + dt.timedelta(days=round(month * 30.44))
            sample = samples.follow_up_sample_collect(
                subject=subject, visit=visits[month], acting_user=clara, collected_at=collected
            )
            samples.assay_result_record(sample=sample, analyte=treg, value=value, acting_user=clara)
            samples.disease_activity_record(
                subject=subject,
                visit=visits[month],
                acting_user=clara,
                assessed_on=timezone.localtime(collected).date(),
                tender=tender,
                swollen=swollen,
                esr_mm_h=esr,
                patient_vas_mm=vas,
            )
