"""The nightly signature check (21 CFR 11.70, EU GMP Annex 11 §14).

The record pages re-verify the signatures they show, but a record nobody opens could be changed
behind the application's back (a raw UPDATE, a restore of an old table, a disabled trigger) and
stay unnoticed for years. This sweep re-verifies every signature in the database with the same
functions the pages use, so the nightly answer and the page's "CHANGED AFTER SIGNING" never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from lims.models import Signature
from lims.notifications import notify_role
from lims.roles import QA
from lims.signatures import signature_check

CHUNK_SIZE = 500

RECORD_CHANGED = "record content"
MANIFESTATION_CHANGED = "manifestation"
RECORD_MISSING = "record missing"


@dataclass(frozen=True)
class BrokenSignature:
    """One signature that no longer matches what was signed, with what differs."""

    signature_id: int
    record: str
    signer: str
    meaning: str
    signed_at: datetime
    differs: tuple[str, ...]

    def line(self) -> str:
        when = timezone.localtime(self.signed_at)
        return (
            f"signature {self.signature_id} on {self.record}: {self.meaning} by {self.signer} "
            f"at {when:%Y-%m-%d %H:%M %Z}; changed after signing: {', '.join(self.differs)}"
        )


@dataclass(frozen=True)
class IntegrityReport:
    checked: int = 0
    valid: int = 0
    broken: list[BrokenSignature] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.broken

    def summary(self) -> str:
        return f"signatures checked={self.checked} valid={self.valid} broken={len(self.broken)}"

    def lines(self) -> list[str]:
        return [self.summary(), *(b.line() for b in self.broken)]


def _chunks(chunk_size: int) -> Iterator[list[Signature]]:
    """Keyset pages by primary key: memory stays flat however many signatures there are."""
    last = 0
    rows = Signature.objects.select_related("signer", "content_type").order_by("pk")
    while chunk := list(rows.filter(pk__gt=last)[:chunk_size]):
        yield chunk
        last = chunk[-1].pk


def _records(chunk: list[Signature]) -> dict[int, dict[int, models.Model]]:
    """The signed records of one chunk, one query per content type (plus what their content reads)."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for signature in chunk:
        wanted[signature.content_type_id].add(signature.object_id)
    found: dict[int, dict[int, models.Model]] = {}
    for content_type_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        # The base manager: a manager that hides rows must not hide a signed record from this check.
        found[content_type_id] = model._base_manager.in_bulk(ids) if model is not None else {}
    return found


def _record_label(signature: Signature, record: models.Model | None) -> str:
    where = f"{signature.content_type.app_label}.{signature.content_type.model} #{signature.object_id}"
    return f"{where} ({record})" if record is not None else where


def _verify(signature: Signature, record: models.Model | None) -> BrokenSignature | None:
    if record is None:
        differs: tuple[str, ...] = (RECORD_MISSING,)
    else:
        check = signature_check(signature, record)
        if check.valid:
            return None
        differs = tuple(
            what
            for what, intact in (
                (RECORD_CHANGED, check.record_unchanged),
                (MANIFESTATION_CHANGED, check.manifestation_intact),
            )
            if not intact
        )
    return BrokenSignature(
        signature_id=signature.pk,
        record=_record_label(signature, record),
        signer=f"{signature.printed_name} ({signature.signer.username})",
        meaning=signature.get_meaning_display(),
        signed_at=signature.signed_at,
        differs=differs,
    )


def signatures_verify(*, chunk_size: int = CHUNK_SIZE) -> IntegrityReport:
    """Recompute both hashes of every signature; a deleted record counts as broken too."""
    checked = valid = 0
    broken: list[BrokenSignature] = []
    for chunk in _chunks(chunk_size):
        records = _records(chunk)
        for signature in chunk:
            checked += 1
            problem = _verify(signature, records[signature.content_type_id].get(signature.object_id))
            if problem is None:
                valid += 1
            else:
                broken.append(problem)
    return IntegrityReport(checked=checked, valid=valid, broken=broken)


def signatures_report_to_qa(report: IntegrityReport) -> int:
    """Tell QA, by e-mail to everyone holding the role, which signatures no longer hold.

    The check changes nothing, so running it twice reports twice: a repeated warning about a broken
    record is preferable to a lost one.
    """
    if report.intact:
        return 0
    return notify_role(
        role=QA,
        subject=f"Signature check: {len(report.broken)} record(s) changed after signing",
        body="\n".join(
            [
                "The nightly signature check found records or signatures that changed after signing.",
                "Each needs a deviation and an investigation; the record pages show them as CHANGED AFTER SIGNING.",
                "",
                *report.lines(),
            ]
        ),
    )
