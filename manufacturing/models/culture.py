"""Culture: batches and their flasks, culture events and the reagent lots they used."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from lims.models import Audited

__all__ = [
    "BATCH_TRANSITIONS",
    "FLASK_TRANSITIONS",
    "LOT_TRANSITIONS",
    "Batch",
    "BatchStatus",
    "CultureEvent",
    "EventKind",
    "Flask",
    "FlaskStatus",
    "Harvest",
    "LotStatus",
    "Reagent",
    "ReagentCategory",
    "ReagentLot",
    "ReagentUse",
    "VesselType",
]

Q = models.Q
F = models.F


class VesselType(Audited):
    """A culture vessel and its growth area: density is cells per cm² of this area."""

    name = models.CharField(max_length=24, unique=True)
    growth_area_cm2 = models.DecimalField("growth area (cm²)", max_digits=7, decimal_places=1)

    class Meta:
        ordering: ClassVar = ["growth_area_cm2"]
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(growth_area_cm2__gt=0), name="vessel_area_positive")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.growth_area_cm2} cm²)"


class ReagentCategory(models.TextChoices):
    MEDIUM = "medium", "Basal medium"
    SUPPLEMENT = "supplement", "Supplement"
    DETACHMENT = "detachment", "Detachment reagent"
    BUFFER = "buffer", "Buffer"
    ANTICOAGULANT = "anticoagulant", "Anticoagulant"
    OTHER = "other", "Other"


class Reagent(Audited):
    """A catalogue entry (MEM-alpha, FBS, human platelet lysate, TrypLE, PBS, heparin …)."""

    name = models.CharField(max_length=80, unique=True)
    category = models.CharField(max_length=16, choices=ReagentCategory.choices)

    class Meta:
        ordering: ClassVar = ["category", "name"]

    def __str__(self) -> str:
        return self.name


class LotStatus(models.TextChoices):
    QUARANTINE = "quarantine", "Quarantine"
    RELEASED = "released", "Released by QA"
    EXPIRED = "expired", "Expired"
    RECALLED = "recalled", "Recalled"


LOT_TRANSITIONS: dict[str, set[str]] = {
    LotStatus.QUARANTINE: {LotStatus.RELEASED, LotStatus.RECALLED},
    LotStatus.RELEASED: {LotStatus.EXPIRED, LotStatus.RECALLED},
    LotStatus.EXPIRED: {LotStatus.RECALLED},
    LotStatus.RECALLED: set(),
}


class ReagentLot(Audited):
    """One supplier lot of a reagent; only a released, unexpired lot may touch a patient's cells."""

    reagent = models.ForeignKey(Reagent, on_delete=models.PROTECT, related_name="lots")
    code = models.CharField(max_length=32, unique=True)
    supplier = models.CharField(max_length=120)
    lot_number = models.CharField(max_length=60)
    expiry_date = models.DateField()
    status = models.CharField(max_length=16, choices=LotStatus.choices, default=LotStatus.QUARANTINE)
    status_reason = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering: ClassVar = ["reagent", "expiry_date"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["reagent", "supplier", "lot_number"], name="reagent_lot_unique")
        ]
        indexes: ClassVar = [models.Index(fields=["reagent", "status", "expiry_date"])]
        permissions: ClassVar = [
            ("release_reagentlot", "Can release a reagent lot from quarantine"),
            ("recall_reagentlot", "Can recall a reagent lot"),
        ]

    def __str__(self) -> str:
        return f"{self.reagent.name} lot {self.lot_number} ({self.code})"

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:lot-detail", args=[self.code])


class BatchStatus(models.TextChoices):
    ISOLATED = "isolated", "Isolated (not yet seeded)"
    IN_CULTURE = "in_culture", "In culture"
    HARVESTED = "harvested", "Harvested"
    RELEASE_TESTING = "release_testing", "In release testing"
    CONDITIONALLY_RELEASED = "conditional", "Conditionally released (sterility pending)"
    RELEASED = "released", "Released by QA"
    REJECTED = "rejected", "Rejected by QA"
    TERMINATED = "terminated", "Terminated"


BATCH_TRANSITIONS: dict[str, set[str]] = {
    BatchStatus.ISOLATED: {BatchStatus.IN_CULTURE, BatchStatus.TERMINATED},
    BatchStatus.IN_CULTURE: {BatchStatus.HARVESTED, BatchStatus.TERMINATED},
    BatchStatus.HARVESTED: {BatchStatus.RELEASE_TESTING, BatchStatus.TERMINATED},
    BatchStatus.RELEASE_TESTING: {BatchStatus.RELEASED, BatchStatus.CONDITIONALLY_RELEASED, BatchStatus.REJECTED},
    BatchStatus.CONDITIONALLY_RELEASED: {BatchStatus.RELEASED, BatchStatus.REJECTED},
    BatchStatus.RELEASED: {BatchStatus.REJECTED},
    BatchStatus.REJECTED: set(),
    BatchStatus.TERMINATED: set(),
}


class Batch(Audited):
    """One subject's product in the making, from an accepted aspirate, under that subject's protocol."""

    lot_number = models.CharField(max_length=32, unique=True)
    aspirate = models.OneToOneField("samples.Aspirate", on_delete=models.PROTECT, related_name="batch")
    subject = models.ForeignKey("samples.Subject", on_delete=models.PROTECT, related_name="batches")
    protocol = models.ForeignKey("samples.ProtocolVersion", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.ISOLATED)
    status_reason = models.TextField(blank=True)
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    mnc_total_cells = models.PositiveBigIntegerField("mononuclear cells counted")
    mnc_viability_percent = models.DecimalField("MNC viability (%)", max_digits=4, decimal_places=1)
    seeded_at = models.DateTimeField(null=True, blank=True, help_text="Culture day 0.")
    specification = models.ForeignKey(
        "manufacturing.Specification",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="batches",
        help_text="The specification version in force when release testing began, frozen here.",
    )
    testing_started_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    needs_rereview = models.BooleanField(
        default=False, help_text="Set when a record of a released batch changes; QA must review again."
    )

    class Meta:
        verbose_name_plural = "batches"
        ordering: ClassVar = ["-started_at"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(mnc_viability_percent__gte=0) & Q(mnc_viability_percent__lte=100),
                name="batch_mnc_viability_percent",
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return self.lot_number

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:batch-detail", args=[self.lot_number])

    def signature_content(self) -> dict[str, object]:
        """What a release signature covers: the batch, its harvest and every QC result with its flag."""
        harvest = getattr(self, "harvest", None)
        return {
            "lot_number": self.lot_number,
            "subject": self.subject_id,
            "specification": self.specification_id,
            "harvest": None
            if harvest is None
            else (harvest.viable_cells, harvest.viability_percent, harvest.volume_ml),
            "results": [
                (r.criterion_id, r.numeric_value, r.qualifier, r.qualitative_outcome, r.unit, r.flag, r.status)
                for r in self.qc_results.order_by("id")
            ],
        }

    def culture_day(self, at: object = None) -> int | None:
        """Whole days since seeding (day 0), in the site's calendar."""
        if self.seeded_at is None:
            return None
        moment = at or timezone.now()
        return (timezone.localtime(moment).date() - timezone.localtime(self.seeded_at).date()).days  # type: ignore[arg-type]


class FlaskStatus(models.TextChoices):
    IN_CULTURE = "in_culture", "In culture"
    PASSAGED = "passaged", "Passaged"
    HARVESTED = "harvested", "Harvested"
    QUARANTINED = "quarantined", "Quarantined"
    DISCARDED = "discarded", "Discarded"


FLASK_TRANSITIONS: dict[str, set[str]] = {
    FlaskStatus.IN_CULTURE: {
        FlaskStatus.PASSAGED,
        FlaskStatus.HARVESTED,
        FlaskStatus.QUARANTINED,
        FlaskStatus.DISCARDED,
    },
    FlaskStatus.QUARANTINED: {FlaskStatus.DISCARDED},
    FlaskStatus.PASSAGED: set(),
    FlaskStatus.HARVESTED: set(),
    FlaskStatus.DISCARDED: set(),
}


class Flask(Audited):
    """One QR-labelled vessel of cells; a passage closes it and seeds its children."""

    code = models.CharField(max_length=32, unique=True)
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="flasks")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    vessel_type = models.ForeignKey(VesselType, on_delete=models.PROTECT, related_name="+")
    passage_number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=FlaskStatus.choices, default=FlaskStatus.IN_CULTURE)
    seeded_at = models.DateTimeField()
    cells_seeded = models.PositiveBigIntegerField()
    medium_volume_ml = models.DecimalField("medium volume (mL)", max_digits=6, decimal_places=1)
    seeding_density_per_cm2 = models.PositiveIntegerField()
    density_warning_reason = models.TextField(
        blank=True, help_text="Why a density outside the protocol's range was accepted."
    )
    cumulative_pd_at_seeding = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering: ClassVar = ["batch", "passage_number", "code"]
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(cells_seeded__gt=0), name="flask_cells_seeded_positive"),
            models.CheckConstraint(condition=Q(medium_volume_ml__gt=0), name="flask_medium_volume_positive"),
        ]
        indexes: ClassVar = [models.Index(fields=["status", "batch"])]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("manufacturing:flask-detail", args=[self.code])


class EventKind(models.TextChoices):
    SEED = "seed", "Seeded"
    FEED = "feed", "Fed (medium change)"
    OBSERVATION = "observation", "Observed"
    PASSAGE = "passage", "Passaged"
    HARVEST = "harvest", "Harvested"
    DISCARD = "discard", "Discarded"


class CultureEvent(Audited):
    """One thing done to one flask, by whom and when; the batch record is nothing but these."""

    flask = models.ForeignKey(Flask, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    backdate_reason = models.TextField(blank=True)
    client_token = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        help_text="Set by the form so that a double-tapped submit records once.",
    )
    note = models.TextField(blank=True)
    # Feed
    volume_ml = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    # Observation
    confluence_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    morphology_ok = models.BooleanField(null=True, blank=True)
    turbidity = models.BooleanField(null=True, blank=True)
    colour_change = models.BooleanField(null=True, blank=True)
    microscopy_contamination = models.BooleanField(null=True, blank=True)
    # Passage and harvest counts
    total_cells = models.PositiveBigIntegerField(null=True, blank=True)
    viable_cells = models.PositiveBigIntegerField(null=True, blank=True)
    viability_percent = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    population_doublings = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    doubling_time_hours = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["occurred_at", "id"]
        indexes: ClassVar = [models.Index(fields=["flask", "kind", "occurred_at"])]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(confluence_percent__isnull=True) | Q(confluence_percent__lte=100),
                name="event_confluence_percent",
            ),
            models.CheckConstraint(
                condition=Q(viability_percent__isnull=True)
                | (Q(viability_percent__gte=0) & Q(viability_percent__lte=100)),
                name="event_viability_percent",
            ),
            models.CheckConstraint(
                condition=Q(viable_cells__isnull=True)
                | Q(total_cells__isnull=True)
                | Q(viable_cells__lte=F("total_cells")),
                name="event_viable_not_above_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flask.code}: {self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def contamination_seen(self) -> bool:
        return bool(self.turbidity or self.colour_change or self.microscopy_contamination)


class ReagentUse(Audited):
    """Which lot went into which event: traceability both ways, and the answer to a recall."""

    event = models.ForeignKey(CultureEvent, on_delete=models.PROTECT, related_name="reagent_uses")
    lot = models.ForeignKey(ReagentLot, on_delete=models.PROTECT, related_name="uses")

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["event", "lot"], name="one_use_per_event_and_lot")]

    def __str__(self) -> str:
        return f"{self.lot.code} in {self.event_id}"


class Harvest(Audited):
    """The batch's pooled harvest: every flask in culture, counted together."""

    batch = models.OneToOneField(Batch, on_delete=models.PROTECT, related_name="harvest")
    harvested_at = models.DateTimeField()
    viable_cells = models.PositiveBigIntegerField()
    viability_percent = models.DecimalField(max_digits=4, decimal_places=1)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=1)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(viability_percent__gte=0)
                & Q(viability_percent__lte=100)
                & Q(volume_ml__gt=0)
                & Q(viable_cells__gt=0),
                name="harvest_values_plausible",
            ),
        ]

    def __str__(self) -> str:
        return f"Harvest of {self.batch.lot_number}"
