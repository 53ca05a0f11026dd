"""Idempotency-Key: a retried call returns the first response and changes nothing.

The key is claimed (a row under a unique constraint) in the same transaction as the service
call and its response. A concurrent retry blocks on that unique key until the first call
commits, then reads its response; if the first call failed unexpectedly its transaction rolls
back, the claim with it, and the retry runs as if it were first. Refusals by the rules are
answers too: they are stored and replayed, so a device that retries after a timeout never
gets a different answer for the same request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import domain_response, error_body
from api.models import IdempotencyRecord
from lims.audit import save_audited
from lims.errors import DomainError

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,255}$"
_KEY_RE = re.compile(KEY_PATTERN)
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(request: Request) -> str:
    """Keyed hash of the call: a body with a signature password is never stored in a guessable form."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    message = f"{request.method}\n{request.path}\n{body}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _answer(run: Callable[[], Response]) -> Response:
    try:
        return run()
    except DomainError as exc:
        return domain_response(exc)


def _replay(record: IdempotencyRecord, request: Request, print_: str) -> HttpResponse:
    if record.fingerprint != print_:
        return Response(
            error_body(
                f"This Idempotency-Key was already used for another request ({record.method} {record.path} with "
                "a different body). Use a new key for a new request.",
                "idempotency_key_reused",
            ),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if record.status_code == 0:  # unreachable while claims share the call's transaction; kept fail-safe
        return Response(error_body("The first request with this key is still running.", "in_progress"), status=409)
    replay = _rendered(record.response_body.encode("utf-8"), record.status_code)
    replay[REPLAYED_HEADER] = "true"
    return replay


def _claim(request: Request, key: str, print_: str) -> tuple[IdempotencyRecord, bool]:
    existing = IdempotencyRecord.objects.select_for_update().filter(owner=request.user, key=key).first()
    if existing is not None:
        return existing, False
    record = IdempotencyRecord(
        owner=request.user, key=key, method=request.method, path=request.path[:255], fingerprint=print_
    )
    try:
        with transaction.atomic():
            save_audited(record, acting_user=request.user, reason=f"idempotency key claimed: {request.method}")
    except IntegrityError:
        # Another call claimed the key first; on PostgreSQL the insert waited for it to commit.
        return IdempotencyRecord.objects.select_for_update().get(owner=request.user, key=key), False
    return record, True


def respond(request: Request, run: Callable[[], Response]) -> HttpResponse:
    """Run ``run`` once per Idempotency-Key (if the call carries one); DomainError becomes its 4xx answer."""
    key = request.headers.get(HEADER)
    if key is None:
        with transaction.atomic():
            response = _answer(run)
        return _rendered(_render(response.data), response.status_code)
    if not _KEY_RE.fullmatch(key):
        raise exceptions.ValidationError(
            {HEADER: ["Use 1 to 255 letters, digits, “-”, “_”, “.” or “:” (a UUID is a good key)."]}
        )
    print_ = fingerprint(request)
    with transaction.atomic():
        record, created = _claim(request, key, print_)
        if not created:
            return _replay(record, request, print_)
        response = _answer(run)
        content = _render(response.data)
        record.status_code, record.response_body = response.status_code, content.decode("utf-8")
        save_audited(
            record,
            acting_user=request.user,
            reason=f"idempotency key answered {response.status_code}",
            update_fields=["status_code", "response_body"],
        )
    return _rendered(content, response.status_code)


def _render(data: Any) -> bytes:
    return JSONRenderer().render(data)


def _rendered(content: bytes, status_code: int) -> HttpResponse:
    """The same bytes for the first answer and every replay."""
    return HttpResponse(content, status=status_code, content_type="application/json")
