"""What cuts across the apps: people, labels, scans, custody and signatures."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from simple_history import register
from simple_history.models import HistoricalRecords


class Audited(models.Model):
    """Every Stroma record keeps its full history; services set who and why before saving."""

    history = HistoricalRecords(inherit=True)

    class Meta:
        abstract = True


class User(AbstractUser):
    """One account per person: shared logins would make every signature meaningless."""

    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta:
        permissions: ClassVar = [
            ("view_audit_trail", "Can view and export audit trails"),
        ]

    @property
    def printed_name(self) -> str:
        """The name printed beside a signature (21 CFR 11.50)."""
        return self.get_full_name() or self.username


# Group membership decides what a person may do, so changes to groups are audited too.
register(Group, app="lims", records_class=HistoricalRecords)


class LabelKind(models.TextChoices):
    WRISTBAND = "WB", "Wristband"
    ASPIRATE = "AS", "Aspirate tube"
    FLASK = "FL", "Flask"
    QC_SAMPLE = "QC", "QC sample"
    PRODUCT = "PB", "Product bag"
    BLOOD = "BL", "Blood sample"
    REAGENT_LOT = "RL", "Reagent lot"


class Label(Audited):
    """The unique code printed on one physical item, linking it to its record (21 CFR 1271.290)."""

    code = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=2, choices=LabelKind.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    item = GenericForeignKey("content_type", "object_id")
    subject_code = models.CharField(max_length=32, blank=True, help_text="Printed on the label; never a name.")
    isbt128_din = models.CharField(
        "ISBT 128 donation identification number", max_length=16, blank=True, help_text="Filled where licensed."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["content_type", "object_id", "kind"], name="one_label_per_item_and_kind"),
        ]
        indexes: ClassVar = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.code}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        item = self.item
        if item is not None and hasattr(item, "get_absolute_url"):
            return str(item.get_absolute_url())
        return reverse("label-detail", args=[self.code])


class ScanOutcome(models.TextChoices):
    OPENED = "opened", "Opened the item"
    UNKNOWN = "unknown", "Valid signature but no such item"
    FORGED = "forged", "Signature does not match (forged or mistyped)"
    MALFORMED = "malformed", "Not a Stroma label"


class ScanAttempt(Audited):
    """Every scan, good or bad: a forged or unknown code is evidence QA may need to see."""

    payload = models.CharField(max_length=255)
    outcome = models.CharField(max_length=16, choices=ScanOutcome.choices)
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="scans")
    scanned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scanned_at = models.DateTimeField(default=timezone.now)
    reported_to_qa_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["outcome", "scanned_at"])]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.payload[:40]}"


class ContainerCondition(models.TextChoices):
    INTACT = "intact", "Intact"
    DAMAGED = "damaged", "Damaged"
    LEAKING = "leaking", "Leaking"
    SEAL_BROKEN = "seal_broken", "Seal broken"


class CustodyEvent(Audited):
    """One hand-over of one labelled item: from whom, to whom, where, when, how warm, in what state."""

    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="custody_events")
    handed_over_by = models.CharField(max_length=120)
    received_by = models.CharField(max_length=120)
    location = models.CharField(max_length=120)
    occurred_at = models.DateTimeField()
    temperature_c = models.DecimalField("temperature (°C)", max_digits=4, decimal_places=1)
    container_condition = models.CharField(max_length=16, choices=ContainerCondition.choices)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["occurred_at", "id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(temperature_c__gte=-200) & models.Q(temperature_c__lte=60),
                name="custody_temperature_physical",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label.code}: {self.handed_over_by} → {self.received_by}"

    def signature_content(self) -> dict[str, object]:
        return {
            "label": self.label.code,
            "handed_over_by": self.handed_over_by,
            "received_by": self.received_by,
            "location": self.location,
            "occurred_at": self.occurred_at,
            "temperature_c": self.temperature_c,
            "container_condition": self.container_condition,
            "note": self.note,
        }


class SignatureMeaning(models.TextChoices):
    REVIEWED = "reviewed", "Reviewed"
    APPROVED = "approved", "Approved"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    VERIFIED = "verified", "Verified"
    ADMINISTERED = "administered", "Administered"
    WITNESSED = "witnessed", "Witnessed"
    ELIGIBILITY_CONFIRMED = "eligibility_confirmed", "Eligibility confirmed"


class Signature(Audited):
    """An electronic signature bound to one record's content at the moment of signing (21 CFR 11.50, 11.70)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=150)
    meaning = models.CharField(max_length=32, choices=SignatureMeaning.choices)
    reason = models.TextField()
    signed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64, help_text="SHA-256 over the record, signer, meaning and UTC time.")
    record_hash = models.CharField(max_length=64, help_text="SHA-256 over the record's content alone.")

    class Meta:
        ordering: ClassVar = ["signed_at", "id"]
        indexes: ClassVar = [models.Index(fields=["content_type", "object_id"])]
        permissions: ClassVar = [("sign_witnessed", "Can sign a custody hand-over as witness")]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} by {self.printed_name}"


class SignatureFailure(Audited):
    """A refused signing attempt: wrong password, or signing locked after repeated failures."""

    attempted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    username_entered = models.CharField(max_length=150)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    meaning = models.CharField(max_length=32, choices=SignatureMeaning.choices)
    why = models.CharField(max_length=200)
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["attempted_by", "failed_at"])]

    def __str__(self) -> str:
        return f"{self.username_entered}: {self.why}"


class DeviationSource(models.TextChoices):
    TRANSPORT = "transport", "Aspirate transport"
    CONTAMINATION = "contamination", "Contamination"
    OOS = "oos", "Out-of-specification result"
    ENVIRONMENT = "environment", "Environmental monitoring excursion"
    CULTURE = "culture", "Culture problem"
    OTHER = "other", "Other"


class DeviationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed by QA"


class Deviation(Audited):
    """A departure from the protocol or specification that QA must assess and close before release."""

    code = models.CharField(max_length=24, unique=True)
    source = models.CharField(max_length=16, choices=DeviationSource.choices)
    status = models.CharField(max_length=8, choices=DeviationStatus.choices, default=DeviationStatus.OPEN)
    description = models.TextField()
    subject_code = models.CharField(max_length=32, blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-opened_at"]
        indexes: ClassVar = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["status", "opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.get_status_display()})"


# --- Reminders (docs/reminders.md) -----------------------------------------------------------


class ReminderStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


REMINDER_TRANSITIONS: dict[str, set[str]] = {
    ReminderStatus.OPEN: {ReminderStatus.ACKNOWLEDGED, ReminderStatus.RESOLVED},
    ReminderStatus.ACKNOWLEDGED: {ReminderStatus.RESOLVED},
    ReminderStatus.RESOLVED: set(),
}


class Reminder(Audited):
    """One thing that fell due, derived from the records by the sweep: at most one per item, kind and due time.

    The kind names a rule in lims.reminders (no choices here, so that a new rule needs no migration);
    the unique key is what makes a sweep that runs twice, or after a crash, create nothing twice.
    """

    kind = models.CharField(max_length=40)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.PositiveBigIntegerField()
    item = GenericForeignKey("content_type", "object_id")
    item_code = models.CharField(max_length=40, help_text="The item's code as printed on its label or record.")
    subject_code = models.CharField(max_length=32, blank=True)
    title = models.CharField(max_length=200)
    audience_role = models.CharField(max_length=40, help_text="The role whose inbox shows this reminder.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ReminderStatus.choices, default=ReminderStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snooze_reason = models.TextField(blank=True)
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["due_at", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "kind", "due_at"], name="one_reminder_per_item_kind_and_due_time"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["status", "audience_role", "due_at"]),
        ]
        permissions: ClassVar = [("acknowledge_reminder", "Can acknowledge or snooze the reminders of their role")]

    def __str__(self) -> str:
        return f"{self.title} (due {timezone.localtime(self.due_at):%Y-%m-%d %H:%M})"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "E-mail as it falls due"
    DIGEST = "digest", "Daily digest e-mail"
    ESCALATION = "escalation", "Escalation e-mail"


class Notification(Audited):
    """The outbox: one row per reminder, recipient and channel, marked sent in the transaction that sends it."""

    reminder = models.ForeignKey(Reminder, on_delete=models.PROTECT, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=16, choices=NotificationChannel.choices)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True, help_text="Message-ID of the e-mail that carried it.")

    class Meta:
        ordering: ClassVar = ["created_at", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["reminder", "recipient", "channel"], name="one_notification_per_reminder_recipient_channel"
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["recipient", "channel"], condition=models.Q(sent_at__isnull=True), name="notification_unsent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient_id} for reminder {self.reminder_id}"


class NotificationPreference(Audited):
    """How one person wants reminder e-mail: each as it falls due (the default) or one daily digest."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notification_preference"
    )
    daily_digest = models.BooleanField(
        default=False, help_text="One e-mail a day (at STROMA_DIGEST_HOUR, site time) instead of one per sweep."
    )

    def __str__(self) -> str:
        return f"{self.user_id}: {'daily digest' if self.daily_digest else 'as due'}"
