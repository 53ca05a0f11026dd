"""From harvest to the patient: formulate the bag, calculate and verify the dose, issue it, carry it
to the ward, and check it at the bedside with two clinicians before it is infused.

Any bedside mismatch is a hard stop: the attempt is recorded for QA, and no infusion can start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.errors import DomainError
from lims.models import ContainerCondition, Label, LabelKind
from lims.roles import require_permission
from lims.services import CLOCK_SKEW, custody_record, label_create, scan_resolve
from lims.signatures import SignatureRequest, authenticate_signer, signature_apply
from lims.values import number, positive
from manufacturing.dose import DoseRefused, DoseWindow, calculate_dose
from manufacturing.models import (
    PRODUCT_TRANSITIONS,
    BatchStatus,
    BedsideCheck,
    DoseCalculation,
    DoseStatus,
    FinalProduct,
    Infusion,
    InfusionStatus,
    ProductStatus,
    QcFlag,
    ResultStatus,
)
from samples.models import Subject, SubjectStatus
from samples.selectors import quantity

# The largest infusion bag in use; a larger figure is a typing slip (and would not fit the record).
BAG_MAX_ML = Decimal("1000")
INFUSABLE_BATCH = {BatchStatus.RELEASED, BatchStatus.CONDITIONALLY_RELEASED}


def _transition(product: FinalProduct, target: str, doing: str) -> None:
    if target not in PRODUCT_TRANSITIONS[product.status]:
        raise DomainError(
            f"Product {product.code} is {product.get_status_display().lower()} and cannot be {doing}.",
            code="bad_transition",
        )


def product_formulate(
    *,
    batch: Any,
    acting_user: Any,
    total_viable_cells: object,
    volume_ml: object,
    formulated_at: dt.datetime | None = None,
) -> FinalProduct:
    """Formulate the harvest into its labelled bag; expiry follows from the protocol's shelf life."""
    from lims.values import cell_count
    from manufacturing.models import Batch

    require_permission(acting_user, "manufacturing.add_finalproduct", action="formulate products")
    cells = cell_count(total_viable_cells, "The viable cells in the bag")
    volume = positive(volume_ml, "The bag volume", "mL")
    if volume > BAG_MAX_ML:
        raise DomainError(f"The bag volume of {volume} mL is more than a bag holds (at most {BAG_MAX_ML} mL).")
    volume = volume.quantize(Decimal("0.1"))
    with transaction.atomic():
        locked = (
            Batch.objects.select_for_update(of=("self",))
            .select_related("protocol", "subject", "harvest")
            .get(pk=batch.pk)
        )
        harvest = getattr(locked, "harvest", None)
        if harvest is None:
            raise DomainError(f"Batch {locked.lot_number} has no harvest yet.")
        if cells > harvest.viable_cells:
            raise DomainError(
                f"The bag cannot hold more viable cells ({cells:,}) than were harvested ({harvest.viable_cells:,})."
            )
        if hasattr(locked, "product"):
            raise DomainError(f"Batch {locked.lot_number} already has its product.")
        moment = formulated_at or timezone.now()
        if moment < harvest.harvested_at or moment > timezone.now() + CLOCK_SKEW:
            raise DomainError("The formulation time must be after the harvest and not in the future.")
        product = FinalProduct(
            batch=locked,
            code=f"PB-{locked.lot_number}",
            formulated_at=moment,
            formulated_by=acting_user,
            total_viable_cells=cells,
            volume_ml=volume,
            expires_at=moment + dt.timedelta(hours=float(locked.protocol.product_shelf_life_hours)),
            storage=storage_text(locked.protocol),
        )
        save_audited(product, acting_user=acting_user, reason="product formulated from the harvest")
        label_create(
            item=product,
            kind=LabelKind.PRODUCT,
            code=product.code,
            subject_code=locked.subject.code,
            acting_user=acting_user,
        )
    return product


def storage_text(protocol: Any) -> str:
    return f"{quantity(protocol.product_storage_min_c)}–{quantity(protocol.product_storage_max_c)} °C"


def _measured_endotoxin(product: FinalProduct) -> Decimal:
    """The valid endotoxin result of the batch; '<x' is taken at its upper bound x (fail-safe)."""
    result = (
        product.batch.qc_results.filter(criterion__attribute="Endotoxin", status=ResultStatus.VALID)
        .exclude(flag=QcFlag.NOT_EVALUABLE)
        .order_by("-entered_at")
        .first()
    )
    if result is None or result.numeric_value is None or result.qualifier == ">":
        raise DomainError(
            f"Batch {product.batch.lot_number} has no usable endotoxin result; the dose cannot be "
            "checked against the patient's limit."
        )
    return result.numeric_value


def require_infusable(product: FinalProduct, *, at: dt.datetime | None = None) -> None:
    at = at or timezone.now()
    if product.batch.status not in INFUSABLE_BATCH:
        raise DomainError(
            f"Product {product.code} is not released: batch {product.batch.lot_number} is "
            f"{product.batch.get_status_display().lower()}.",
            code="not_released",
        )
    if at >= product.expires_at:
        raise DomainError(
            f"Product {product.code} expired at {timezone.localtime(product.expires_at):%Y-%m-%d %H:%M}.",
            code="expired",
        )


def _kg(weight: Decimal) -> str:
    """A weight as the scale shows it; a figure no scale shows (a typing slip) in short."""
    return str(weight.quantize(Decimal("0.1"))) if abs(weight) < 10**6 else f"{weight:.2E}"


def dose_calculate(
    *,
    product: FinalProduct,
    acting_user: Any,
    weight_kg: object,
    weight_measured_on: dt.date,
    target_million_per_kg: object,
) -> DoseCalculation:
    """Calculate the dose for the product's own subject; any earlier calculation is voided."""
    require_permission(acting_user, "manufacturing.add_dosecalculation", action="calculate doses")
    weight = number(weight_kg, "The body weight")
    target = number(target_million_per_kg, "The target dose")
    with transaction.atomic():
        locked = (
            FinalProduct.objects.select_for_update(of=("self",))
            .select_related("batch", "batch__protocol", "batch__subject")
            .get(pk=product.pk)
        )
        protocol, subject = locked.batch.protocol, locked.batch.subject
        if subject.status != SubjectStatus.ENROLLED:
            raise DomainError(f"Subject {subject.code} is {subject.get_status_display().lower()}.")
        if not protocol.weight_min_kg <= weight <= protocol.weight_max_kg:
            raise DomainError(
                f"A body weight of {_kg(weight)} kg is outside the plausible "
                f"{protocol.weight_min_kg}–{protocol.weight_max_kg} kg; weigh the subject again."
            )
        weight = weight.quantize(Decimal("0.1"))
        age = (timezone.localdate() - weight_measured_on).days
        if age < 0:
            raise DomainError("The weight cannot be measured in the future.")
        if age > protocol.weight_max_age_days:
            raise DomainError(
                f"The weight was measured {age} days ago; the protocol accepts at most "
                f"{protocol.weight_max_age_days} days. Weigh the subject again."
            )
        require_infusable(locked)
        endotoxin = _measured_endotoxin(locked)
        try:
            dose = calculate_dose(
                weight_kg=weight,
                target_million_per_kg=target,
                concentration_per_ml=Decimal(locked.total_viable_cells) / locked.volume_ml,
                available_cells=Decimal(locked.total_viable_cells),
                available_volume_ml=locked.volume_ml,
                window=DoseWindow(protocol.dose_min_million_per_kg, protocol.dose_max_million_per_kg),
                syringe_resolution_ml=protocol.syringe_resolution_ml,
                k_eu_per_kg=protocol.endotoxin_k_eu_per_kg,
            )
        except DoseRefused as exc:
            raise DomainError(str(exc), code="dose_refused") from exc
        if endotoxin > dose.endotoxin_limit_eu_per_ml:
            raise DomainError(
                f"Endotoxin {endotoxin} EU/mL is above this patient's limit of "
                f"{dose.endotoxin_limit_eu_per_ml} EU/mL (5 EU/kg × {weight} kg ÷ {dose.volume_ml} mL).",
                code="endotoxin",
            )
        for earlier in locked.doses.select_for_update(of=("self",)).exclude(status=DoseStatus.VOIDED):
            earlier.status, earlier.status_reason = DoseStatus.VOIDED, "superseded by a new calculation"
            save_audited(
                earlier,
                acting_user=acting_user,
                reason="voided: inputs changed",
                update_fields=["status", "status_reason"],
            )
        calculation = DoseCalculation(
            product=locked,
            subject=subject,
            weight_kg=weight,
            weight_measured_on=weight_measured_on,
            target_million_per_kg=target,
            concentration_per_ml=(Decimal(locked.total_viable_cells) / locked.volume_ml).quantize(Decimal("0.01")),
            cells_to_give=dose.cells_to_give.to_integral_value(),
            volume_ml=dose.volume_ml,
            achieved_cells=dose.achieved_cells,
            achieved_million_per_kg=dose.achieved_million_per_kg,
            endotoxin_limit_eu_per_ml=dose.endotoxin_limit_eu_per_ml,
            endotoxin_measured_eu_per_ml=endotoxin,
            calculated_by=acting_user,
        )
        save_audited(calculation, acting_user=acting_user, reason="dose calculated")
    return calculation


def dose_verify(*, dose: DoseCalculation, acting_user: Any, signature: SignatureRequest) -> DoseCalculation:
    """A second qualified person checks the calculation and signs "verified"."""
    require_permission(acting_user, "manufacturing.verify_dose", action="verify doses")
    signer = authenticate_signer(
        request=signature,
        record=dose,
        acting_user=acting_user,
        allowed_meanings={"verified"},
        required_permission="manufacturing.verify_dose",
    )
    with transaction.atomic():
        locked = DoseCalculation.objects.select_for_update(of=("self",)).get(pk=dose.pk)
        if locked.status != DoseStatus.CALCULATED:
            raise DomainError(f"This calculation is {locked.get_status_display().lower()}; it cannot be verified.")
        if locked.calculated_by_id == signer.pk:
            raise DomainError("The person who calculated the dose cannot also verify it.", code="same_person")
        locked.status, locked.verified_by, locked.verified_at = DoseStatus.VERIFIED, signer, timezone.now()
        save_audited(
            locked, acting_user=signer, reason=signature.reason, update_fields=["status", "verified_by", "verified_at"]
        )
        signature_apply(record=locked, signer=signer, meaning="verified", reason=signature.reason)
    return locked


@dataclass(frozen=True)
class Handover:
    courier: str
    temperature_c: object
    at: dt.datetime | None = None


def product_issue(*, product: FinalProduct, acting_user: Any, handover: Handover) -> FinalProduct:
    """Issue a released, unexpired product from the cleanroom to the courier."""
    require_permission(acting_user, "manufacturing.issue_product", action="issue products")
    with transaction.atomic():
        locked = FinalProduct.objects.select_for_update(of=("self",)).select_related("batch").get(pk=product.pk)
        _transition(locked, ProductStatus.ISSUED, "issued")
        require_infusable(locked)
        moment = handover.at or timezone.now()
        custody_record(
            label=Label.objects.get(code=locked.code),
            acting_user=acting_user,
            handed_over_by=acting_user.printed_name,
            received_by=handover.courier,
            location="Cleanroom dispatch",
            occurred_at=moment,
            temperature_c=handover.temperature_c,
            container_condition=ContainerCondition.INTACT,
        )
        locked.status = ProductStatus.ISSUED
        save_audited(locked, acting_user=acting_user, reason=f"issued to {handover.courier}", update_fields=["status"])
    return locked


def transport_flags(
    protocol: Any, *, issued_at: dt.datetime | None, moment: dt.datetime, temperature: Decimal
) -> list[str]:
    """What the protocol's transport limits say of one hand-over; flagged, not refused, for QA to weigh."""
    flags = []
    if issued_at is not None:
        hours = Decimal((moment - issued_at).total_seconds()) / 3600
        if hours > protocol.product_transport_max_hours:
            flags.append(f"transport took {hours:.1f} h (limit {quantity(protocol.product_transport_max_hours, 'h')})")
    low, high = protocol.product_storage_min_c, protocol.product_storage_max_c
    if not low <= temperature <= high:
        flags.append(f"received at {temperature} °C (limits {storage_text(protocol)})")
    return flags


def product_receive_at_ward(
    *, product: FinalProduct, acting_user: Any, scanned_payload: str, handover: Handover, ward: str
) -> FinalProduct:
    """Receive the bag at the ward by scanning it; time or temperature outside the limits is flagged."""
    from lims.services import require_scanned

    require_permission(acting_user, "manufacturing.receive_product", action="receive products at the ward")
    require_scanned(payload=scanned_payload, expected_code=product.code, acting_user=acting_user)
    with transaction.atomic():
        locked = (
            FinalProduct.objects.select_for_update(of=("self",)).select_related("batch__protocol").get(pk=product.pk)
        )
        _transition(locked, ProductStatus.AT_WARD, "received at the ward")
        moment = handover.at or timezone.now()
        issued = locked.history.filter(status=ProductStatus.ISSUED).order_by("history_date").last()
        temperature = number(handover.temperature_c, "The temperature (°C)")
        flags = transport_flags(
            locked.batch.protocol, issued_at=issued and issued.history_date, moment=moment, temperature=temperature
        )
        custody_record(
            label=Label.objects.get(code=locked.code),
            acting_user=acting_user,
            handed_over_by=handover.courier,
            received_by=acting_user.printed_name,
            location=ward,
            occurred_at=moment,
            temperature_c=temperature,
            container_condition=ContainerCondition.INTACT,
            note="; ".join(flags),
        )
        locked.status, locked.transport_flags = ProductStatus.AT_WARD, "; ".join(flags)
        save_audited(
            locked,
            acting_user=acting_user,
            reason="received at the ward" + (f" — {'; '.join(flags)}" if flags else ""),
            update_fields=["status", "transport_flags"],
        )
    return locked


def _bedside_findings(
    product: FinalProduct | None, subject: Subject | None, second: Any, first: Any, problems: list[str]
) -> list[str]:
    findings = list(problems)
    if product is None or subject is None:
        return findings
    if product.batch.subject_id != subject.pk:
        findings.append(
            f"WRONG PATIENT: bag {product.code} belongs to {product.batch.subject.code}, the wristband "
            f"is {subject.code}"
        )
    try:
        require_infusable(product)
    except DomainError as exc:
        findings.append(exc.message)
    if product.status != ProductStatus.AT_WARD:
        findings.append(
            f"custody incomplete: the product is {product.get_status_display().lower()}, not received at the ward"
        )
    verified = product.doses.filter(status=DoseStatus.VERIFIED, subject=subject).first()
    if verified is None:
        findings.append("no verified dose calculation for this subject and product")
    if second is not None and second.pk == first.pk:
        findings.append("the same clinician cannot be both checkers")
    return findings


def bedside_verify(
    *, wristband_payload: str, bag_payload: str, acting_user: Any, second_clinician: SignatureRequest
) -> Infusion:
    """Two clinicians, together, match wristband and bag; any mismatch is a hard stop recorded for QA."""
    require_permission(acting_user, "manufacturing.add_infusion", action="verify products at the bedside")
    wristband = scan_resolve(payload=wristband_payload, acting_user=acting_user)
    bag = scan_resolve(payload=bag_payload, acting_user=acting_user)
    problems = [r.error for r in (wristband, bag) if r.label is None]
    subject = wristband.label.item if wristband.label and wristband.label.kind == LabelKind.WRISTBAND else None
    product = bag.label.item if bag.label and bag.label.kind == LabelKind.PRODUCT else None
    if wristband.label is not None and subject is None:
        problems.append(f"{wristband.label.code} is not a wristband")
    if bag.label is not None and product is None:
        problems.append(f"{bag.label.code} is not a product bag")
    second = None
    try:
        second = authenticate_signer(
            request=second_clinician,
            record=product or acting_user,
            acting_user=acting_user,
            allowed_meanings={"witnessed"},
            required_permission="manufacturing.add_infusion",
            signer_must_be_acting_user=False,
        )
    except DomainError as exc:
        problems.append(f"second clinician: {exc.message}")
    findings = _bedside_findings(product, subject, second, acting_user, problems)
    with transaction.atomic():
        check = BedsideCheck(
            wristband_payload=wristband_payload[:255],
            bag_payload=bag_payload[:255],
            product=product,
            subject=subject,
            first_checker=acting_user,
            second_checker=second,
            passed=not findings,
            findings="\n".join(findings),
        )
        save_audited(
            check,
            acting_user=acting_user,
            reason="bedside check passed" if not findings else "HARD STOP at the bedside",
        )
    if findings:
        raise DomainError(
            "HARD STOP — do not infuse. " + " ".join(f"{f}." for f in findings), code="hard_stop", reasons=findings
        )
    if product is None or subject is None or second is None:  # unreachable: findings would be non-empty
        raise DomainError("HARD STOP — the bedside check is incomplete.", code="hard_stop")
    with transaction.atomic():
        locked = FinalProduct.objects.select_for_update(of=("self",)).get(pk=product.pk)
        if hasattr(locked, "infusion"):
            raise DomainError(f"Product {locked.code} already has an infusion record.")
        dose = locked.doses.get(status=DoseStatus.VERIFIED)
        infusion = Infusion(
            product=locked,
            subject=subject,
            dose=dose,
            bedside_check=check,
            administered_by=acting_user,
            witnessed_by=second,
        )
        save_audited(infusion, acting_user=acting_user, reason="two-person bedside check passed")
    return infusion


VITAL_RANGES = {
    "heart_rate_bpm": (Decimal(30), Decimal(220)),
    "systolic_mmhg": (Decimal(60), Decimal(260)),
    "diastolic_mmhg": (Decimal(30), Decimal(160)),
    "temperature_c": (Decimal(33), Decimal(42)),
    "spo2_percent": (Decimal(50), Decimal(100)),
    "respiratory_rate": (Decimal(5), Decimal(60)),
}


def _vitals(values: dict[str, object], when: str) -> dict[str, str]:
    checked = {}
    for name, (low, high) in VITAL_RANGES.items():
        if name not in values or values[name] in ("", None):
            raise DomainError(f"Record {name.replace('_', ' ')} {when} the infusion.")
        value = number(values[name], f"{name.replace('_', ' ')} {when}")
        if not low <= value <= high:
            raise DomainError(
                f"{name.replace('_', ' ').capitalize()} {when} of {value} is outside human range "
                f"({low}–{high}); check the measurement."
            )
        checked[name] = str(value)
    return checked


@dataclass(frozen=True)
class InfusionRecord:
    started_at: dt.datetime
    ended_at: dt.datetime
    volume_infused_ml: object
    vitals_before: dict[str, object]
    vitals_after: dict[str, object]
    adverse_reaction: str = ""
    adverse_grade: int | None = None
    adverse_action: str = ""


def infusion_complete(
    *,
    infusion: Infusion,
    acting_user: Any,
    record: InfusionRecord,
    administered: SignatureRequest,
    witnessed: SignatureRequest,
) -> Infusion:
    """Record the infusion; both clinicians sign ("administered" and "witnessed"); the bag is infused."""
    require_permission(acting_user, "manufacturing.add_infusion", action="record infusions")
    if record.ended_at < record.started_at:
        raise DomainError("The infusion cannot end before it started.")
    if record.ended_at > timezone.now() + CLOCK_SKEW:
        raise DomainError("The end time cannot be in the future.")
    volume = positive(record.volume_infused_ml, "The volume infused", "mL")
    before, after = _vitals(record.vitals_before, "before"), _vitals(record.vitals_after, "after")
    if record.adverse_reaction.strip() and (record.adverse_grade is None or not record.adverse_action.strip()):
        raise DomainError("For an adverse reaction, give its grade (1–5) and the action taken.")
    if record.adverse_grade is not None and not 1 <= record.adverse_grade <= 5:
        raise DomainError("The adverse reaction grade is 1 to 5.")
    administrator = authenticate_signer(
        request=administered,
        record=infusion,
        acting_user=acting_user,
        allowed_meanings={"administered"},
        signer_must_be_acting_user=True,
        required_permission="manufacturing.add_infusion",
    )
    witness = authenticate_signer(
        request=witnessed,
        record=infusion,
        acting_user=acting_user,
        allowed_meanings={"witnessed"},
        signer_must_be_acting_user=False,
        required_permission="manufacturing.add_infusion",
    )
    with transaction.atomic():
        locked = Infusion.objects.select_for_update(of=("self",)).select_related("product", "dose").get(pk=infusion.pk)
        if locked.status != InfusionStatus.VERIFIED:
            raise DomainError("This infusion is already recorded.")
        if {administrator.pk, witness.pk} != {locked.administered_by_id, locked.witnessed_by_id}:
            raise DomainError("The two signers must be the two clinicians who checked the product at the bedside.")
        if volume > locked.product.volume_ml:
            raise DomainError(f"{volume} mL is more than the bag held ({locked.product.volume_ml} mL).")
        if record.started_at < locked.bedside_check.checked_at - CLOCK_SKEW:
            raise DomainError("The infusion cannot start before the bedside check.")
        locked.started_at, locked.ended_at, locked.volume_infused_ml = record.started_at, record.ended_at, volume
        locked.vitals_before, locked.vitals_after = before, after
        locked.adverse_reaction = record.adverse_reaction.strip()
        locked.adverse_grade, locked.adverse_action = record.adverse_grade, record.adverse_action.strip()
        locked.status = InfusionStatus.COMPLETED
        save_audited(locked, acting_user=acting_user, reason="infusion recorded")
        signature_apply(record=locked, signer=administrator, meaning="administered", reason=administered.reason)
        signature_apply(record=locked, signer=witness, meaning="witnessed", reason=witnessed.reason)
        product = FinalProduct.objects.select_for_update(of=("self",)).get(pk=locked.product_id)
        product.status = ProductStatus.INFUSED
        save_audited(product, acting_user=acting_user, reason="infused", update_fields=["status"])
    return locked


def product_dispose(*, product: FinalProduct, acting_user: Any, disposition: str, reason: str) -> FinalProduct:
    """End a product that will not be infused: returned or destroyed, with the reason."""
    require_permission(acting_user, "manufacturing.issue_product", action="return or destroy products")
    reason = require_reason(reason, what="this disposition")
    if disposition not in (ProductStatus.RETURNED, ProductStatus.DESTROYED):
        raise DomainError("A product is returned or destroyed.")
    with transaction.atomic():
        locked = FinalProduct.objects.select_for_update(of=("self",)).get(pk=product.pk)
        _transition(locked, disposition, ProductStatus(disposition).label.lower())
        locked.status, locked.status_reason = disposition, reason
        save_audited(locked, acting_user=acting_user, reason=reason, update_fields=["status", "status_reason"])
    return locked
