"""Reads shaped for the cross-cutting pages; query counts do not grow with the data."""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse

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
    """A label's QR as served to an item's page (``label-qr``), kept per process.

    The key is the signed payload, so a new label key never serves an old symbol.
    """
    return labels.qr_svg(payload)


def screen_qr_url(code: str) -> str:
    """The symbol's own URL, versioned by the signed payload: drawing it is not the page's work.

    Drawing a QR symbol (the mask choice) costs more than reading the page's records; served apart,
    the page is sent at once and the browser fetches the symbol beside it, once per label and key.
    """
    version = hashlib.sha256(labels.label_payload(code).encode()).hexdigest()[:12]
    return f"{reverse('label-qr', args=[code])}?v={version}"


def label_item_context(label: Label) -> dict[str, Any]:
    """What an item page shows about its label: the QR, print links and custody."""
    return {
        "label": label,
        "qr_url": screen_qr_url(label.code),
        "custody": custody_timeline(label),
        "custody_content_type_id": ContentType.objects.get_for_model(CustodyEvent).pk,
        "custody_signable": "lims.custodyevent" in SIGNABLE,
    }
