"""Release: versioned specifications, QC samples and results with stored flags, processing sessions
with environmental monitoring, and QA's signed decision."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from lims.models import Audited

__all__ = [
    "EM_LIMITS",
    "SPEC_TRANSITIONS",
    "Classification",
    "Comparator",
    "DeviationClosure",
    "EmKind",
    "EmReading",
    "Grade",
    "ProcessingSession",
    "QcFlag",
    "QcResult",
    "QcSample",
    "ResultStatus",
    "SessionBatch",
    "SpecCriterion",
    "SpecStatus",
    "Specification",
]

Q = models.Q


class SpecStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved (in force)"
    SUPERSEDED = "superseded", "Superseded"


SPEC_TRANSITIONS: dict[str, set[str]] = {
    SpecStatus.DRAFT: {SpecStatus.APPROVED},
    SpecStatus.APPROVED: {SpecStatus.SUPERSEDED},
    SpecStatus.SUPERSEDED: set(),
}


class Specification(Audited):
    """A study's release specification, one version; approved versions are superseded, never edited."""

    study = models.ForeignKey("samples.Study", on_delete=models.PROTECT, related_name="specifications")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=SpecStatus.choices, default=SpecStatus.DRAFT)
    change_summary = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    allows_conditional_release = models.BooleanField(
        default=False, help_text="Whether QA may release before final sterility, as a signed, justified exception."
    )

    class Meta:
        ordering: ClassVar = ["study", "-version"]
        permissions: ClassVar = [
            ("approve_specification", "Can approve (sign) a release specification"),
            ("enter_qcresult", "Can enter QC results"),
            ("decide_release", "Can release or reject a batch (QA)"),
            ("close_deviation", "Can assess and close deviations"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "version"], name="specification_version_unique"),
            models.UniqueConstraint(fields=["study"], condition=Q(status="approved"), name="one_spec_in_force"),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} specification v{self.version}"

    def signature_content(self) -> dict[str, object]:
        return {
            "study": self.study_id,
            "version": self.version,
            "criteria": [
                (c.attribute, c.method, c.comparator, c.limit, c.unit) for c in self.criteria.order_by("position")
            ],
        }


class Comparator(models.TextChoices):
    AT_LEAST = "gte", "≥"
    AT_MOST = "lte", "≤"
    EQUALS = "eq", "="
    NOT_DETECTED = "not_detected", "not detected"
    NO_GROWTH = "no_growth", "no growth"
    NEGATIVE = "negative", "negative"
    ENDOTOXIN = "endotoxin", "≤ K × body weight ÷ volume (at dose time)"
    PASSAGE = "passage", "≤ the protocol's passage limit"
    DOSE = "dose", "≥ the prescribed dose (at dose time)"


class SpecCriterion(Audited):
    specification = models.ForeignKey(Specification, on_delete=models.PROTECT, related_name="criteria")
    attribute = models.CharField(max_length=60)
    method = models.CharField(max_length=120, blank=True)
    comparator = models.CharField(max_length=16, choices=Comparator.choices)
    limit = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering: ClassVar = ["specification", "position"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["specification", "attribute"], name="criterion_attribute_unique"),
            models.CheckConstraint(
                condition=~Q(comparator__in=["gte", "lte", "eq"]) | Q(limit__isnull=False),
                name="numeric_criterion_has_limit",
            ),
        ]

    def __str__(self) -> str:
        limit = f" {self.limit.normalize():f}" if self.limit is not None else ""
        return f"{self.attribute} {self.get_comparator_display()}{limit} {self.unit}".strip()


class QcSample(Audited):
    """A labelled sample taken from the batch for testing, at harvest or in process."""

    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="qc_samples")
    code = models.CharField(max_length=32, unique=True)
    purpose = models.CharField(max_length=80)
    taken_at = models.DateTimeField()
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["batch", "taken_at"]

    def __str__(self) -> str:
        return f"{self.code} ({self.purpose})"

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:batch-detail", args=[self.batch.lot_number])


class QcFlag(models.TextChoices):
    PASS = "pass", "Pass"
    OOS = "oos", "OUT OF SPECIFICATION"
    NOT_EVALUABLE = "not_evaluable", "Cannot be evaluated (counts as a failure)"
    AT_DOSE = "at_dose", "Evaluated per patient at dose time"


class ResultStatus(models.TextChoices):
    VALID = "valid", "Valid"
    INVALIDATED = "invalidated", "Invalidated by QA"


class QcResult(Audited):
    """One result against one criterion of the batch's frozen specification.

    The flag is computed when the result is entered and stored with it; it is never recomputed
    away. A retest is a new result linked to the first; an invalidation keeps the row.
    """

    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="qc_results")
    criterion = models.ForeignKey(SpecCriterion, on_delete=models.PROTECT, related_name="results")
    sample = models.ForeignKey(QcSample, null=True, blank=True, on_delete=models.PROTECT, related_name="results")
    numeric_value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    qualifier = models.CharField(max_length=1, blank=True, help_text="'<' below the detection limit, '>' above.")
    qualitative_outcome = models.CharField(max_length=40, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    method = models.CharField(max_length=120, blank=True)
    instrument = models.CharField(max_length=80, blank=True)
    analyst = models.CharField(max_length=120)
    tested_at = models.DateTimeField()
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)
    flag = models.CharField(max_length=16, choices=QcFlag.choices)
    flag_explanation = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.VALID)
    status_reason = models.TextField(blank=True)
    retest_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retests")
    investigation = models.ForeignKey(
        "lims.Deviation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["batch", "criterion__position", "entered_at"]
        indexes: ClassVar = [models.Index(fields=["batch", "criterion", "status"])]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(numeric_value__isnull=False) | ~Q(qualitative_outcome=""), name="result_has_a_value"
            ),
            models.CheckConstraint(condition=Q(qualifier__in=["", "<", ">"]), name="result_qualifier_known"),
        ]

    def __str__(self) -> str:
        return f"{self.criterion.attribute}: {self.display_value} ({self.get_flag_display()})"

    @property
    def display_value(self) -> str:
        if self.numeric_value is not None:
            return f"{self.qualifier}{self.numeric_value.normalize():f} {self.unit}".strip()
        return self.qualitative_outcome


class Classification(models.TextChoices):
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class DeviationClosure(Audited):
    """QA's assessment that closes a deviation: classification, impact and the corrective action, signed."""

    deviation = models.OneToOneField("lims.Deviation", on_delete=models.PROTECT, related_name="closure")
    classification = models.CharField(max_length=16, choices=Classification.choices)
    impact_assessment = models.TextField()
    corrective_action = models.TextField()
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Closure of {self.deviation.code}"

    def signature_content(self) -> dict[str, object]:
        return {
            "deviation": self.deviation.code,
            "classification": self.classification,
            "impact": self.impact_assessment,
            "corrective_action": self.corrective_action,
        }


class Grade(models.TextChoices):
    A = "A", "Grade A"
    B = "B", "Grade B"
    C = "C", "Grade C"
    D = "D", "Grade D"


class ProcessingSession(Audited):
    """A cleanroom session (room, grade, cabinet, operators) in which batches were processed."""

    room = models.CharField(max_length=40)
    room_grade = models.CharField(max_length=1, choices=Grade.choices, default=Grade.B)
    cabinet = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    operators = models.CharField(max_length=200)
    batches: models.ManyToManyField = models.ManyToManyField(
        "manufacturing.Batch", related_name="sessions", through="SessionBatch"
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.room} / {self.cabinet} {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"


class SessionBatch(Audited):
    """A batch processed in a session: an excursion in the session reaches exactly these batches."""

    session = models.ForeignKey(ProcessingSession, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("manufacturing.Batch", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["session", "batch"], name="batch_once_per_session")]

    def __str__(self) -> str:
        return f"{self.batch_id} in session {self.session_id}"


class EmKind(models.TextChoices):
    PARTICLES_0_5 = "particles_0_5", "Particles ≥ 0.5 µm per m³ (in operation)"
    PARTICLES_5 = "particles_5", "Particles ≥ 5 µm per m³ (in operation)"
    AIR = "air", "Active air sample (CFU/m³)"
    SETTLE = "settle", "Settle plate 90 mm, 4 h (CFU)"
    CONTACT = "contact", "Contact plate 55 mm (CFU)"


# EU GMP Annex 1 (2022) limits in operation; None = not specified. Any grade A colony is an excursion.
EM_LIMITS: dict[str, dict[str, int | None]] = {
    "A": {"particles_0_5": 3520, "particles_5": None, "air": 0, "settle": 0, "contact": 0},
    "B": {"particles_0_5": 352000, "particles_5": 2930, "air": 10, "settle": 5, "contact": 5},
    "C": {"particles_0_5": 3520000, "particles_5": 29300, "air": 100, "settle": 50, "contact": 25},
    "D": {"particles_0_5": None, "particles_5": None, "air": 200, "settle": 100, "contact": 50},
}


class EmReading(Audited):
    session = models.ForeignKey(ProcessingSession, on_delete=models.PROTECT, related_name="readings")
    grade = models.CharField(max_length=1, choices=Grade.choices, help_text="Grade of the sampled location.")
    kind = models.CharField(max_length=16, choices=EmKind.choices)
    location = models.CharField(max_length=80)
    value = models.PositiveIntegerField()
    limit = models.PositiveIntegerField(null=True, blank=True)
    excursion = models.BooleanField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["session", "recorded_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.location}: {self.value}"
