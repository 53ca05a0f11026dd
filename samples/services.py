"""State changes of studies and subjects."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from lims.audit import require_reason, stamp
from lims.errors import DomainError
from lims.models import LabelKind
from lims.roles import require_permission
from lims.services import label_create
from samples.models import Sex, Study, Subject


def subject_register(
    *,
    study: Study,
    acting_user: Any,
    sex: str,
    date_of_birth: date,
    screening_date: date,
    consent_date: date,
    reason: str = "subject registered at screening",
) -> Subject:
    """Give a screened person a pseudonymous code and a wristband label; no name is ever stored."""
    require_permission(acting_user, "samples.add_subject", action="register subjects")
    reason = require_reason(reason, what="registering a subject")
    today = timezone.localdate()
    if sex not in Sex.values:
        raise DomainError("Choose the subject's sex from the list.")
    if date_of_birth >= screening_date:
        raise DomainError("The date of birth must be before the screening date.")
    if screening_date > today or consent_date > today:
        raise DomainError("Screening and consent dates cannot be in the future.")
    if consent_date > screening_date:
        raise DomainError("Consent must be given on or before the screening date.")
    with transaction.atomic():
        locked_study = Study.objects.select_for_update().get(pk=study.pk)
        last = locked_study.subjects.aggregate(last=Max("sequence"))["last"] or 0
        sequence = last + 1
        subject = Subject(
            study=locked_study,
            sequence=sequence,
            code=f"{locked_study.subject_prefix}-{sequence:03d}",
            sex=sex,
            date_of_birth=date_of_birth,
            screening_date=screening_date,
            consent_date=consent_date,
            registered_by=acting_user,
        )
        stamp(subject, acting_user=acting_user, reason=reason)
        subject.save()
        label_create(
            item=subject,
            kind=LabelKind.WRISTBAND,
            code=f"WB-{subject.code}",
            subject_code=subject.code,
            acting_user=acting_user,
        )
    return subject
