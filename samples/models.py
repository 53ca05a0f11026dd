"""What comes from the subject: studies, subjects and (later) aspirates and follow-up samples."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from lims.models import Audited

code_validator = RegexValidator(r"^[A-Z0-9]+(-[A-Z0-9]+)*$", "Use upper-case letters, digits and single hyphens.")


class Study(Audited):
    """A clinical study; its protocol parameters belong to it, not to the code."""

    code = models.CharField(max_length=16, unique=True, validators=[code_validator])
    registry_id = models.CharField("registry id", max_length=32, unique=True, help_text="e.g. NCT03333681")
    title = models.TextField()
    phase = models.CharField(max_length=8)
    sponsor = models.CharField(max_length=200)
    planned_enrolment = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "studies"
        ordering: ClassVar = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.registry_id})"

    @property
    def subject_prefix(self) -> str:
        return self.code.replace("-", "")


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"


class SubjectStatus(models.TextChoices):
    SCREENING = "screening", "Screening"
    ENROLLED = "enrolled", "Enrolled"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Subject(Audited):
    """A person in a study, known to Stroma only by a pseudonymous code."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="subjects")
    sequence = models.PositiveIntegerField()
    code = models.CharField(max_length=32, unique=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    date_of_birth = models.DateField()
    screening_date = models.DateField()
    consent_date = models.DateField()
    status = models.CharField(max_length=16, choices=SubjectStatus.choices, default=SubjectStatus.SCREENING)
    registered_at = models.DateTimeField(default=timezone.now)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["study", "sequence"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "sequence"], name="subject_sequence_per_study"),
            models.CheckConstraint(
                condition=models.Q(date_of_birth__lt=models.F("screening_date")), name="subject_born_before_screening"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("samples:subject-detail", args=[self.code])
