"""Reagent lots: received into quarantine, released by QA, recalled with every use listed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from lims.audit import require_reason, save_audited
from lims.db import serialize_on
from lims.errors import DomainError
from lims.models import LabelKind
from lims.roles import require_permission
from lims.services import label_create
from manufacturing.models import LOT_TRANSITIONS, Batch, Flask, LotStatus, Reagent, ReagentLot


def reagent_lot_receive(
    *, reagent: Reagent, acting_user: Any, supplier: str, lot_number: str, expiry_date: dt.date
) -> ReagentLot:
    """Book a delivered lot into quarantine and label it; QA releases it before use."""
    require_permission(acting_user, "manufacturing.add_reagentlot", action="receive reagent lots")
    supplier, lot_number = supplier.strip(), lot_number.strip()
    if not supplier or not lot_number:
        raise DomainError("Give the supplier and the supplier's lot number.")
    if expiry_date < timezone.localdate():
        raise DomainError(f"Lot {lot_number} expired on {expiry_date:%Y-%m-%d}; it cannot be received for use.")
    with transaction.atomic():
        serialize_on("reagent-lot-numbering")
        if ReagentLot.objects.filter(reagent=reagent, supplier=supplier, lot_number=lot_number).exists():
            raise DomainError(f"{reagent.name} lot {lot_number} from {supplier} is already booked in.")
        number = (ReagentLot.objects.aggregate(n=Max("id"))["n"] or 0) + 1
        lot = ReagentLot(
            reagent=reagent,
            code=f"RL-{number:05d}",
            supplier=supplier,
            lot_number=lot_number,
            expiry_date=expiry_date,
            received_by=acting_user,
        )
        save_audited(lot, acting_user=acting_user, reason="lot received into quarantine")
        label_create(item=lot, kind=LabelKind.REAGENT_LOT, code=lot.code, subject_code="", acting_user=acting_user)
    return lot


def _lot_transition(
    lot: ReagentLot, *, acting_user: Any, target: str, reason: str, permission: str, action: str
) -> ReagentLot:
    require_permission(acting_user, permission, action=action)
    reason = require_reason(reason, what=action)
    with transaction.atomic():
        locked = ReagentLot.objects.select_for_update(of=("self",)).select_related("reagent").get(pk=lot.pk)
        if target not in LOT_TRANSITIONS[locked.status]:
            raise DomainError(
                f"{locked} is {locked.get_status_display().lower()}; "
                f"it cannot become {LotStatus(target).label.lower()}."
            )
        if target == LotStatus.RELEASED and locked.expiry_date < timezone.localdate():
            raise DomainError(f"{locked} expired on {locked.expiry_date:%Y-%m-%d}; it cannot be released.")
        locked.status, locked.status_reason = target, reason
        save_audited(locked, acting_user=acting_user, reason=reason, update_fields=["status", "status_reason"])
    return locked


def reagent_lot_release(*, lot: ReagentLot, acting_user: Any, reason: str) -> ReagentLot:
    return _lot_transition(
        lot,
        acting_user=acting_user,
        target=LotStatus.RELEASED,
        reason=reason,
        permission="manufacturing.release_reagentlot",
        action="release reagent lots",
    )


@dataclass(frozen=True)
class RecallImpact:
    lot: ReagentLot
    flasks: list[Flask]
    batches: list[Batch]


def recall_impact(lot: ReagentLot) -> RecallImpact:
    """Every flask and batch that a lot touched, through the events that used it."""
    flasks = list(
        Flask.objects.filter(events__reagent_uses__lot=lot).select_related("batch").distinct().order_by("code")
    )
    batches = list(Batch.objects.filter(flasks__events__reagent_uses__lot=lot).distinct().order_by("lot_number"))
    return RecallImpact(lot=lot, flasks=flasks, batches=batches)


def reagent_lot_recall(*, lot: ReagentLot, acting_user: Any, reason: str) -> RecallImpact:
    """Recall a lot: it can no longer be used, and QA sees every flask and batch that used it."""
    recalled = _lot_transition(
        lot,
        acting_user=acting_user,
        target=LotStatus.RECALLED,
        reason=reason,
        permission="manufacturing.recall_reagentlot",
        action="recall reagent lots",
    )
    return recall_impact(recalled)


def require_usable_lot(lot: ReagentLot, *, on: dt.date) -> None:
    """Refuse a lot that is not released, is expired or recalled, and name one to use instead."""
    problem = None
    if lot.status == LotStatus.RECALLED:
        problem = f"{lot} is recalled ({lot.status_reason})"
    elif lot.status == LotStatus.QUARANTINE:
        problem = f"{lot} is still in quarantine: QA has not released it"
    elif lot.status == LotStatus.EXPIRED or lot.expiry_date < on:
        problem = f"{lot} expired on {lot.expiry_date:%Y-%m-%d}"
    if problem is None:
        return
    instead = (
        ReagentLot.objects.filter(reagent_id=lot.reagent_id, status=LotStatus.RELEASED, expiry_date__gte=on)
        .order_by("expiry_date")
        .first()
    )
    suggestion = (
        f" Use {instead.code} (lot {instead.lot_number}, expires {instead.expiry_date:%Y-%m-%d}) instead."
        if instead
        else f" No released {lot.reagent.name} lot is available: ask QA."
    )
    raise DomainError(problem + "." + suggestion, code="lot_unusable")
