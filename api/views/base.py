"""What every API view shares: lookups that never reach the database with junk, and one shape for writes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from django.db import models
from django.http import HttpResponse
from rest_framework import exceptions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from api.idempotency import respond

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,39}$")
ID_RE = re.compile(r"^[1-9][0-9]{0,18}$")
MAX_ID = 2**63 - 1


def valid_lookup(value: str, *, numeric: bool) -> bool:
    if numeric:
        return bool(ID_RE.fullmatch(value)) and int(value) <= MAX_ID
    return bool(CODE_RE.fullmatch(value))


def not_found(what: str, value: str) -> exceptions.NotFound:
    if CODE_RE.fullmatch(value) or ID_RE.fullmatch(value):
        return exceptions.NotFound(f"No {what} {value} is recorded.")
    return exceptions.NotFound(f"No {what} is recorded under this address.")


class ReadViewSet(viewsets.ReadOnlyModelViewSet):
    # List (paginated, filtered, ordered) and detail; each subclass shapes its queryset with
    # select_related/prefetch_related so that a page costs a fixed number of queries whatever its size.
    # (A comment, not a docstring: the schema would show a docstring as every operation's description.)

    lookup_value_regex = "[^/]+"
    what: ClassVar[str] = "record"
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {}

    def _numeric_lookup(self) -> bool:
        field = self.get_queryset().model._meta.get_field("id" if self.lookup_field == "pk" else self.lookup_field)
        return isinstance(field, models.IntegerField | models.AutoField)

    def lookup_value(self) -> str:
        kwarg = self.lookup_url_kwarg or self.lookup_field
        return str(self.kwargs[kwarg])

    def target(self, queryset: models.QuerySet[Any] | None = None) -> Any:
        """The record the URL names, looked up without the list's filters (a write's target)."""
        value = self.lookup_value()
        if not valid_lookup(value, numeric=self._numeric_lookup()):
            raise not_found(self.what, value)
        found = (queryset if queryset is not None else self.get_queryset()).filter(**{self.lookup_field: value}).first()
        if found is None:
            raise not_found(self.what, value)
        return found

    def get_object(self) -> Any:
        obj = self.target()
        self.check_object_permissions(self.request, obj)
        return obj


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def write(request: Request, run: Callable[[], Response]) -> HttpResponse:
    """One service call, in one transaction, once per Idempotency-Key; a refusal is its 4xx answer."""
    return respond(request, run)
