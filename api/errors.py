"""Every refusal, whoever raises it, as ``{"detail": message, "code": code, "reasons": [...]}``.

A DomainError from a service keeps its sentence and code; the HTTP status follows the code:
403 when the role does not allow the step (or the signature is refused), 409 when the record's
current state does not allow it, 422 when the rules refuse what was sent. Shape errors found
before the service is called (unknown fields, wrong types, bad JSON) are 400.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lims.errors import DomainError

FORBIDDEN_CODES = frozenset({"forbidden", "not_authorised", "not_own_signature", "wrong_password", "signing_locked"})
CONFLICT_CODES = frozenset(
    {
        "bad_transition",
        "flask_closed",
        "release_blocked",
        "segregation",
        "passage_limit",
        "lot_unusable",
        "not_released",
        "expired",
        "hard_stop",
        "same_person",
        "ineligible",
        "conflict",
        "in_progress",
    }
)


def status_for(code: str) -> int:
    if code in FORBIDDEN_CODES:
        return status.HTTP_403_FORBIDDEN
    if code in CONFLICT_CODES:
        return status.HTTP_409_CONFLICT
    return status.HTTP_422_UNPROCESSABLE_ENTITY


def clean(text: object) -> str:
    """Text safe to encode: a lone surrogate echoed from the input must not break the response."""
    return str(text).encode("utf-8", "replace").decode("utf-8")


def error_body(detail: str, code: str, reasons: list[str] | None = None) -> dict[str, Any]:
    detail = clean(detail)
    return {"detail": detail, "code": clean(code), "reasons": [clean(r) for r in (reasons or [detail])]}


def domain_response(exc: DomainError) -> Response:
    return Response(error_body(exc.message, exc.code, list(exc.reasons)), status=status_for(exc.code))


def _flatten(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        found: list[str] = []
        for key, value in data.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            found.extend(_flatten(value, f"{name}." if name else ""))
        return found
    if isinstance(data, list):
        return [line for item in data for line in _flatten(item, prefix)]
    label = prefix.rstrip(".")
    return [f"{label}: {data}" if label else str(data)]


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    if isinstance(exc, exceptions.PermissionDenied):
        return "forbidden"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return domain_response(exc)
    if isinstance(exc, IntegrityError):
        return Response(
            error_body(
                "This change collided with another one saved at the same moment; nothing was saved. Try again.",
                "conflict",
            ),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Nothing is recorded under this address.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Your role does not allow this.")
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        reasons = _flatten(exc.detail)
        fields = sorted({r.split(":", 1)[0] for r in reasons if ":" in r})
        detail = (
            f"Check {', '.join(fields)}: {reasons[0].split(': ', 1)[-1]}"
            if fields
            else (reasons[0] if reasons else "The request is not valid.")
        )
        if len(reasons) > 1:
            detail += f" (and {len(reasons) - 1} more)"
        response.data = error_body(detail, "invalid", reasons)
    else:
        response.data = error_body(str(exc.detail), _code_of(exc))
    return response
