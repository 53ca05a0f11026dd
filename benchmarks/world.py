"""What the benchmarks need that is made through the services: people, the study, reagent lots and,
on every run, a fresh small batch (the "small data" of the page query counts and of the feeds)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone

from lims.models import User
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA, sync_roles
from manufacturing.models import Batch, Flask, LotStatus, Reagent, ReagentLot, VesselType
from manufacturing.services.lots import reagent_lot_receive, reagent_lot_release
from samples.models import Study
from tests.factories import approved_study
from tests.manufacturing.helpers import accepted_aspirate, seeded_flasks, started_batch, vessel

# The benchmark accounts' password: they exist only in the benchmark database.
PASSWORD = "bench-only-password-31"  # noqa: S105
SUPPLIER = "Bench Bio"
OPERATORS = 5
LOTS_PER_REAGENT = 4
MEDIUM, SUPPLEMENT, DETACHMENT = "MEM-alpha", "Human platelet lysate", "TrypLE Select"


@dataclass(frozen=True)
class World:
    operator: User  # staff as well: the admin pages are read as this person
    operators: list[User]
    clinician: User
    qa: User
    lab_manager: User
    study: Study
    medium_lots: list[ReagentLot]
    supplement_lots: list[ReagentLot]
    detachment_lots: list[ReagentLot]
    t75: VesselType
    t225: VesselType


def _person(username: str, role: str, *, staff: bool = False) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        first, _, last = username.partition("-")
        user = User(
            username=username, first_name=first.title(), last_name=last.title(), email=f"{username}@bench.local"
        )
        user.set_password(PASSWORD)
        user.is_staff = staff
        user.save()
    if not user.groups.filter(name=role).exists():
        if not Group.objects.filter(name=role).exists():
            from django.apps import apps

            sync_roles(apps)
        user.groups.add(Group.objects.get(name=role))
    return user


def _lots(name: str, operator: User, qa: User) -> list[ReagentLot]:
    reagent = Reagent.objects.get_or_create(
        name=name, defaults={"category": {MEDIUM: "medium", SUPPLEMENT: "supplement"}.get(name, "detachment")}
    )[0]
    lots = list(ReagentLot.objects.filter(reagent=reagent, supplier=SUPPLIER, status=LotStatus.RELEASED).order_by("id"))
    for number in range(len(lots), LOTS_PER_REAGENT):
        lot = reagent_lot_receive(
            reagent=reagent,
            acting_user=operator,
            supplier=SUPPLIER,
            lot_number=f"BENCH-{name[:4].upper()}-{number + 1}",
            expiry_date=timezone.localdate() + dt.timedelta(days=120 + 60 * number),
        )
        lots.append(reagent_lot_release(lot=lot, acting_user=qa, reason="certificate of analysis reviewed"))
    return lots


def world() -> World:
    """Find or make the benchmark's people, study and lots (idempotent: a reused database keeps them)."""
    operators = [_person(f"bench-operator{n}", OPERATOR, staff=n == 1) for n in range(1, OPERATORS + 1)]
    operator = operators[0]
    qa = _person("bench-qa", QA)
    lab_manager = _person("bench-labmanager", LAB_MANAGER)
    clinician = _person("bench-clinician", CLINICIAN)
    return World(
        operator=operator,
        operators=operators,
        clinician=clinician,
        qa=qa,
        lab_manager=lab_manager,
        study=approved_study(lab_manager, PASSWORD),
        medium_lots=_lots(MEDIUM, operator, qa),
        supplement_lots=_lots(SUPPLEMENT, operator, qa),
        detachment_lots=_lots(DETACHMENT, operator, qa),
        t75=vessel("T75"),
        t225=vessel("T225"),
    )


@dataclass(frozen=True)
class SmallBatch:
    batch: Batch
    flasks: list[Flask]
    media: list[ReagentLot]


def fresh_small_batch(w: World) -> SmallBatch:
    """A new subject, aspirate and batch seeded into two flasks, all through the services, as at the bench."""
    media = [w.medium_lots[0], w.supplement_lots[0]]
    aspirate = accepted_aspirate(w.study, w.clinician, w.operator, PASSWORD)
    batch = started_batch(aspirate, w.operator)
    flasks = seeded_flasks(batch, w.operator, media, count=2)
    return SmallBatch(batch=Batch.objects.get(pk=batch.pk), flasks=flasks, media=media)


def people(w: World) -> list[Any]:
    return [*w.operators, w.clinician, w.qa, w.lab_manager]
