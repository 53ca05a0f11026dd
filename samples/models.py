"""What comes from the subject: studies and their protocols, subjects and eligibility,
bone marrow aspirates, follow-up samples and their results."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from lims.models import Audited

code_validator = RegexValidator(r"^[A-Z0-9]+(-[A-Z0-9]+)*$", "Use upper-case letters, digits and single hyphens.")
Q = models.Q
F = models.F


class Study(Audited):
    """A clinical study; its protocol parameters belong to its protocol versions, not to the code."""

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

    def get_absolute_url(self) -> str:
        return reverse("samples:study-detail", args=[self.code])

    @property
    def subject_prefix(self) -> str:
        return self.code.replace("-", "")


class ProtocolStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved (in force)"
    SUPERSEDED = "superseded", "Superseded"


PROTOCOL_TRANSITIONS: dict[str, set[str]] = {
    ProtocolStatus.DRAFT: {ProtocolStatus.APPROVED},
    ProtocolStatus.APPROVED: {ProtocolStatus.SUPERSEDED},
    ProtocolStatus.SUPERSEDED: set(),
}


class ProtocolVersion(Audited):
    """One version of a study's protocol parameters. Approved versions are never edited: a change
    makes a new version, and every subject keeps the version it was enrolled under."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="protocol_versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ProtocolStatus.choices, default=ProtocolStatus.DRAFT)
    change_summary = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)

    # Eligibility, evaluated automatically at screening.
    eligible_sexes = models.CharField(max_length=8, default="F", help_text="Comma-separated: F, M")
    age_min_years = models.PositiveSmallIntegerField(default=35)
    age_max_years = models.PositiveSmallIntegerField(default=60)
    # Dose window (×10⁶ cells per kg body weight).
    dose_min_million_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1.000"))
    dose_max_million_per_kg = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("2.000"))
    # Culture schedule.
    feed_interval_hours = models.DecimalField(max_digits=6, decimal_places=1, default=Decimal("84.0"))
    observation_interval_hours = models.DecimalField(max_digits=6, decimal_places=1, default=Decimal("24.0"))
    passage_confluence_percent = models.PositiveSmallIntegerField(default=70)
    passage_limit = models.PositiveSmallIntegerField(default=4)
    target_culture_days = models.PositiveSmallIntegerField(default=28)
    culture_days_tolerance = models.PositiveSmallIntegerField(default=3)
    p0_density_min_per_cm2 = models.PositiveIntegerField(default=100_000)
    p0_density_max_per_cm2 = models.PositiveIntegerField(default=200_000)
    passage_density_min_per_cm2 = models.PositiveIntegerField(default=1_000)
    passage_density_max_per_cm2 = models.PositiveIntegerField(default=5_000)
    allowed_vessel_types = models.CharField(
        max_length=200,
        default="T25,T75,T175,T225,CellSTACK-1,CellSTACK-2,CellSTACK-5",
        help_text="Comma-separated vessel type names the study allows.",
    )
    # Aspirate transport limits.
    max_hours_collection_to_receipt = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("24.0"))
    transport_temp_min_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("15.0"))
    transport_temp_max_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("25.0"))
    # Product and dose.
    product_shelf_life_hours = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("6.0"))
    product_storage_min_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("2.0"))
    product_storage_max_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("8.0"))
    product_transport_max_hours = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("2.0"))
    weight_max_age_days = models.PositiveSmallIntegerField(default=7)
    weight_min_kg = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("30.0"))
    weight_max_kg = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("200.0"))
    syringe_resolution_ml = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("0.10"))
    endotoxin_k_eu_per_kg = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("5.00"))

    class Meta:
        ordering: ClassVar = ["study", "-version"]
        permissions: ClassVar = [("approve_protocolversion", "Can approve (sign) a protocol version into force")]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "version"], name="protocol_version_unique"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(status="approved"), name="one_protocol_in_force_per_study"
            ),
            models.CheckConstraint(condition=Q(age_min_years__lte=F("age_max_years")), name="protocol_age_range"),
            models.CheckConstraint(
                condition=Q(dose_min_million_per_kg__gt=0)
                & Q(dose_min_million_per_kg__lte=F("dose_max_million_per_kg")),
                name="protocol_dose_window",
            ),
            models.CheckConstraint(
                condition=Q(feed_interval_hours__gt=0) & Q(observation_interval_hours__gt=0),
                name="protocol_intervals_positive",
            ),
            models.CheckConstraint(
                condition=Q(transport_temp_min_c__lte=F("transport_temp_max_c"))
                & Q(max_hours_collection_to_receipt__gt=0),
                name="protocol_transport_limits",
            ),
            models.CheckConstraint(
                condition=Q(passage_confluence_percent__gt=0) & Q(passage_confluence_percent__lte=100),
                name="protocol_confluence_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} protocol v{self.version} ({self.get_status_display()})"

    @property
    def vessel_types(self) -> set[str]:
        return {v.strip() for v in self.allowed_vessel_types.split(",") if v.strip()}

    @property
    def sexes(self) -> set[str]:
        return {s.strip() for s in self.eligible_sexes.split(",") if s.strip()}

    def signature_content(self) -> dict[str, object]:
        fields = {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}
        for volatile in ("status", "approved_at"):
            fields.pop(volatile)
        fields["criteria"] = [(c.kind, c.text) for c in self.criteria.order_by("position", "pk")]
        fields["visits"] = [(v.name, v.month, v.window_days) for v in self.visits.order_by("month", "pk")]
        fields["analytes"] = [(a.name, a.unit, a.min_value, a.max_value) for a in self.analytes.order_by("position")]
        return fields


class CriterionKind(models.TextChoices):
    INCLUSION = "inclusion", "Inclusion"
    EXCLUSION = "exclusion", "Exclusion"


class EligibilityCriterion(Audited):
    """One checklist item the investigator answers. Inclusion needs "yes"; exclusion needs "no"."""

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="criteria")
    kind = models.CharField(max_length=16, choices=CriterionKind.choices)
    text = models.CharField(max_length=300)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering: ClassVar = ["protocol", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"


class FollowUpVisit(Audited):
    """A protocol visit: month after infusion, with a window in days either side."""

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="visits")
    name = models.CharField(max_length=40)
    month = models.PositiveSmallIntegerField()
    window_days = models.PositiveSmallIntegerField()
    before_infusion = models.BooleanField(default=False)
    primary_endpoint = models.BooleanField(default=False)

    class Meta:
        ordering: ClassVar = ["protocol", "month"]
        constraints: ClassVar = [models.UniqueConstraint(fields=["protocol", "month"], name="one_visit_per_month")]

    def __str__(self) -> str:
        return self.name


class Analyte(Audited):
    """What is measured in a follow-up sample, with its unit and the range a real value can take."""

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="analytes")
    name = models.CharField(max_length=40)
    definition = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=16)
    min_value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    max_value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering: ClassVar = ["protocol", "position"]
        constraints: ClassVar = [models.UniqueConstraint(fields=["protocol", "name"], name="analyte_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"


class SubjectStatus(models.TextChoices):
    SCREENING = "screening", "Screening"
    ENROLLED = "enrolled", "Enrolled (eligibility confirmed)"
    INELIGIBLE = "ineligible", "Not eligible"
    WITHDRAWN = "withdrawn", "Withdrawn"


SUBJECT_TRANSITIONS: dict[str, set[str]] = {
    SubjectStatus.SCREENING: {SubjectStatus.ENROLLED, SubjectStatus.INELIGIBLE, SubjectStatus.WITHDRAWN},
    SubjectStatus.ENROLLED: {SubjectStatus.WITHDRAWN},
    SubjectStatus.INELIGIBLE: set(),
    SubjectStatus.WITHDRAWN: set(),
}


class Subject(Audited):
    """A person in a study, known to Stroma only by a pseudonymous code."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="subjects")
    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="subjects")
    sequence = models.PositiveIntegerField()
    code = models.CharField(max_length=32, unique=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    date_of_birth = models.DateField()
    screening_date = models.DateField()
    consent_date = models.DateField()
    status = models.CharField(max_length=16, choices=SubjectStatus.choices, default=SubjectStatus.SCREENING)
    status_reason = models.TextField(blank=True)
    registered_at = models.DateTimeField(default=timezone.now)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["study", "sequence"]
        permissions: ClassVar = [
            ("confirm_eligibility", "Can answer the eligibility checklist and sign eligibility"),
            ("withdraw_subject", "Can withdraw a subject"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "sequence"], name="subject_sequence_per_study"),
            models.CheckConstraint(
                condition=Q(date_of_birth__lt=F("screening_date")), name="subject_born_before_screening"
            ),
            models.CheckConstraint(condition=Q(consent_date__lte=F("screening_date")), name="subject_consent_first"),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("samples:subject-detail", args=[self.code])

    def signature_content(self) -> dict[str, object]:
        return {
            "code": self.code,
            "protocol": self.protocol_id,
            "sex": self.sex,
            "date_of_birth": self.date_of_birth.isoformat(),
            "screening_date": self.screening_date.isoformat(),
            "consent_date": self.consent_date.isoformat(),
            "answers": sorted((a.criterion_id, a.answer) for a in self.eligibility_answers.all()),
        }


class EligibilityAnswer(Audited):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="eligibility_answers")
    criterion = models.ForeignKey(EligibilityCriterion, on_delete=models.PROTECT, related_name="+")
    answer = models.BooleanField(help_text="Yes or no, as the investigator answered the item.")
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["subject", "criterion"], name="one_answer_per_criterion")
        ]

    def __str__(self) -> str:
        return f"{self.subject.code}: {'yes' if self.answer else 'no'}"


class AspirateStatus(models.TextChoices):
    COLLECTED = "collected", "Collected"
    IN_TRANSIT = "in_transit", "In transit to the cleanroom"
    ACCEPTED = "accepted", "Received and accepted"
    ACCEPTED_WITH_DEVIATION = "accepted_deviation", "Accepted with a deviation"
    REJECTED = "rejected", "Rejected"


ASPIRATE_TRANSITIONS: dict[str, set[str]] = {
    AspirateStatus.COLLECTED: {AspirateStatus.IN_TRANSIT},
    AspirateStatus.IN_TRANSIT: {
        AspirateStatus.ACCEPTED,
        AspirateStatus.ACCEPTED_WITH_DEVIATION,
        AspirateStatus.REJECTED,
    },
    AspirateStatus.ACCEPTED: set(),
    AspirateStatus.ACCEPTED_WITH_DEVIATION: set(),
    AspirateStatus.REJECTED: set(),
}


class Aspirate(Audited):
    """A bone marrow aspirate, from the clinic to the cleanroom; the batch starts from an accepted one."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="aspirates")
    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=24, choices=AspirateStatus.choices, default=AspirateStatus.COLLECTED)
    collected_at = models.DateTimeField()
    collected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    site = models.CharField(max_length=80, default="posterior iliac crest")
    volume_ml = models.DecimalField(
        "volume (mL)",
        max_digits=5,
        decimal_places=1,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("500"))],
    )
    anticoagulant = models.CharField(max_length=40, default="heparin")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    receipt_temperature_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    container_intact = models.BooleanField(null=True, blank=True)
    hours_in_transit = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    receipt_findings = models.TextField(blank=True, help_text="What the receipt check found outside the limits.")
    receipt_reason = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar = ["-collected_at"]
        permissions: ClassVar = [("receive_aspirate", "Can receive an aspirate in the cleanroom")]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(volume_ml__gt=0) & Q(volume_ml__lte=500), name="aspirate_volume_plausible"
            ),
            models.CheckConstraint(
                condition=Q(received_at__isnull=True) | Q(received_at__gte=F("collected_at")),
                name="aspirate_received_after_collection",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("samples:aspirate-detail", args=[self.code])


class FollowUpSample(Audited):
    """A blood sample drawn at a protocol visit."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="follow_up_samples")
    visit = models.ForeignKey(FollowUpVisit, on_delete=models.PROTECT, related_name="samples")
    code = models.CharField(max_length=32, unique=True)
    collected_at = models.DateTimeField()
    collected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["subject", "visit__month"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["subject", "visit"], name="one_sample_per_subject_visit")
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("samples:follow-up-sample", args=[self.code])


class AssayResult(Audited):
    """One analyte's value in one sample. Corrections keep the original in the history, with a reason."""

    sample = models.ForeignKey(FollowUpSample, on_delete=models.PROTECT, related_name="results")
    analyte = models.ForeignKey(Analyte, on_delete=models.PROTECT, related_name="+")
    value = models.DecimalField(max_digits=12, decimal_places=4)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["sample", "analyte"], name="one_result_per_sample_analyte")
        ]

    def __str__(self) -> str:
        return f"{self.analyte.name} {self.value} {self.analyte.unit}"


class Das28Category(models.TextChoices):
    REMISSION = "remission", "Remission (< 2.6)"
    LOW = "low", "Low (2.6–3.2)"
    MODERATE = "moderate", "Moderate (> 3.2–5.1)"
    HIGH = "high", "High (> 5.1)"


class DiseaseActivity(Audited):
    """DAS28-ESR at a visit. The score is stored with its inputs so it is never silently recomputed."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="disease_activity")
    visit = models.ForeignKey(FollowUpVisit, on_delete=models.PROTECT, related_name="+")
    assessed_on = models.DateField()
    tender_joints_28 = models.PositiveSmallIntegerField(validators=[MaxValueValidator(28)])
    swollen_joints_28 = models.PositiveSmallIntegerField(validators=[MaxValueValidator(28)])
    esr_mm_h = models.DecimalField("ESR (mm/h)", max_digits=5, decimal_places=1)
    patient_global_vas_mm = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    das28_esr = models.DecimalField(max_digits=4, decimal_places=2)
    category = models.CharField(max_length=16, choices=Das28Category.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name_plural = "disease activity assessments"
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["subject", "visit"], name="one_das28_per_subject_visit"),
            models.CheckConstraint(
                condition=Q(tender_joints_28__lte=28)
                & Q(swollen_joints_28__lte=28)
                & Q(patient_global_vas_mm__lte=100)
                & Q(esr_mm_h__gt=0),
                name="das28_inputs_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject.code} {self.visit.name}: DAS28-ESR {self.das28_esr}"
