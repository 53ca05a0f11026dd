"""OpenAPI: every operation documents its refusals, its Idempotency-Key and an example of each."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from api.idempotency import HEADER, KEY_PATTERN


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for the person at the bench.")
    code = serializers.CharField(help_text="A stable code: forbidden, bad_transition, invalid, …")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Every reason, one per line.")


ERROR_TEXT = {
    "400": ("invalid", "Check volume_ml: A valid number is required.", "The body or a filter has the wrong shape."),
    "401": (
        "not_authenticated",
        "Sign in, or send an API token as “Authorization: Bearer <token>”.",
        "No valid credentials.",
    ),
    "403": ("forbidden", "Your role does not allow you to record culture steps.", "The role does not allow it."),
    "404": ("not_found", "Nothing is recorded under this address.", "No such record."),
    "409": (
        "flask_closed",
        "Flask FL-000012 was discarded by Olivia Operator at 10:42 on 2026-03-02 and cannot be fed.",
        "The record's current state does not allow the step.",
    ),
    "413": (
        "too_large",
        "The request body is 1,048,576 bytes; the API accepts at most 65,536.",
        "The body is too large.",
    ),
    "415": ("unsupported_media_type", 'Unsupported media type "text/plain" in request.', "Send application/json."),
    "422": ("refused", "The medium volume must be above 0 mL.", "The rules refuse what was sent."),
}


def _errors_for(method: str, *, detail: bool, listing: bool, public: bool) -> list[str]:
    if public:
        return ["404"] if detail else []
    codes = ["401", "403"]
    if method == "GET":
        codes += ["400", "404"] if listing else ["404"]
    else:
        codes += ["400", "409", "413", "415", "422"] + (["404"] if detail else [])
    return codes


class StromaAutoSchema(AutoSchema):
    """Adds, to what a view declares, the refusals every call can meet and the Idempotency-Key header."""

    error_media_types: tuple[str, ...] | None = None

    def _flags(self) -> tuple[bool, bool, bool]:
        detail = "{" in self.path
        listing = self._is_list_view() and self.method == "GET"
        public = bool(getattr(self.view, "public_schema", False))
        return detail, listing, public

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        detail, listing, public = self._flags()
        for code in _errors_for(self.method, detail=detail, listing=listing, public=public):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, self.error_media_types, direction)
                response["description"] = ERROR_TEXT[code][2]
                responses[code] = response
        return responses

    def get_examples(self) -> list[OpenApiExample]:
        detail, listing, public = self._flags()
        examples = list(super().get_examples())
        for code in _errors_for(self.method, detail=detail, listing=listing, public=public):
            error_code, sentence, _ = ERROR_TEXT[code]
            examples.append(
                OpenApiExample(
                    f"Refused ({code})",
                    value={"detail": sentence, "code": error_code, "reasons": [sentence]},
                    response_only=True,
                    status_codes=[code],
                )
            )
        return examples

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        skipped: frozenset[str] = getattr(self.view, "not_idempotent_actions", frozenset())
        if self.method == "POST" and getattr(self.view, "action", None) not in skipped:
            parameters.append(
                OpenApiParameter(
                    HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    pattern=KEY_PATTERN,
                    description=(
                        "Send the same key to retry safely: the first response is returned again and nothing "
                        "changes. The same key with a different body is refused with 422."
                    ),
                    examples=[OpenApiExample("A UUID", value="5f0c8f8e-8d4e-4b8e-9a55-2b6f3a1c7d10")],
                )
            )
        return parameters


def forbid_unknown_request_fields(result: dict[str, Any], generator: Any, request: Any, public: Any) -> dict[str, Any]:
    """Request bodies refuse unknown fields (400), so the schema says so."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result
