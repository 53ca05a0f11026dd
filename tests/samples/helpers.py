"""Arrange helpers for samples tests: subjects taken through enrolment by the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from lims.labels import label_payload
from lims.signatures import SignatureRequest
from samples.models import Aspirate, Subject
from samples.services import (
    aspirate_collect,
    aspirate_dispatch,
    subject_answer_eligibility,
    subject_confirm_eligibility,
    subject_register,
)
from tests.factories import subject_dates


def enrolled_subject(study: Any, clinician: Any, password: str, *, age: int = 45) -> Subject:
    subject = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates(age))
    subject_answer_eligibility(
        subject=subject,
        acting_user=clinician,
        answers={c.pk: c.kind == "inclusion" for c in subject.protocol.criteria.all()},
    )
    return subject_confirm_eligibility(
        subject=subject,
        acting_user=clinician,
        signature=SignatureRequest(
            username=clinician.username, password=password, meaning="eligibility_confirmed", reason="checklist reviewed"
        ),
    )


def aspirate_in_transit(subject: Subject, clinician: Any, *, hours_ago: float = 3) -> Aspirate:
    collected = timezone.now() - dt.timedelta(hours=hours_ago)
    aspirate = aspirate_collect(subject=subject, acting_user=clinician, collected_at=collected, volume_ml="15.0")
    return aspirate_dispatch(
        aspirate=aspirate,
        acting_user=clinician,
        courier="Hamid",
        temperature_c="21.0",
        dispatched_at=collected + dt.timedelta(minutes=10),
    )


def tube_payload(aspirate: Aspirate) -> str:
    return label_payload(aspirate.code)


def an_hour_ago() -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=1)
