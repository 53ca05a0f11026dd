"""Reads shaped for the cross-cutting pages; query counts do not grow with the data."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from lims import labels
from lims.models import CustodyEvent, Label, Signature
from lims.signatures import SIGNABLE, SignatureCheck, signature_check


@dataclass(frozen=True)
class CustodyRow:
    event: CustodyEvent
    signatures: list[SignatureCheck]


def signature_checks_for(records: list[models.Model]) -> dict[int, list[SignatureCheck]]:
    """Signatures of many records of one model in one query, each re-verified against its record."""
    if not records:
        return {}
    content_type = ContentType.objects.get_for_model(records[0])
    by_pk = {record.pk: record for record in records}
    found: dict[int, list[SignatureCheck]] = defaultdict(list)
    rows = Signature.objects.filter(content_type=content_type, object_id__in=by_pk).select_related("signer")
    for signature in rows:
        found[signature.object_id].append(signature_check(signature, by_pk[signature.object_id]))
    return found


def custody_timeline(label: Label) -> list[CustodyRow]:
    events = list(label.custody_events.select_related("recorded_by", "label"))
    checks = signature_checks_for(events)  # type: ignore[arg-type]
    return [CustodyRow(event, checks.get(event.pk, [])) for event in events]


@functools.lru_cache(maxsize=1024)
def screen_qr_svg(payload: str) -> str:
    """A label's QR as shown on its item's page, kept per process.

    An item's page is opened again and again at the bench (scan, feed, back to the flask), and
    drawing the symbol is a large part of the page. The key is the signed payload, so a new label
    key never shows an old symbol.
    """
    return labels.qr_svg(payload)


def label_item_context(label: Label) -> dict[str, Any]:
    """What an item page shows about its label: the QR, print links and custody."""
    return {
        "label": label,
        "qr_svg": screen_qr_svg(labels.label_payload(label.code)),
        "custody": custody_timeline(label),
        "custody_content_type_id": ContentType.objects.get_for_model(CustodyEvent).pk,
        "custody_signable": "lims.custodyevent" in SIGNABLE,
    }
