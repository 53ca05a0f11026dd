"""A person's own API tokens: list, issue (signed in, with the password again) and revoke."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api import examples as ex
from api.idempotency import HEADER
from api.models import ApiToken
from api.serializers import write
from api.tokens import api_token_issue, api_token_revoke
from api.views.base import ReadViewSet, validated
from api.views.base import write as call


@extend_schema_view(
    list=extend_schema(tags=["Tokens"], examples=ex.read("Your tokens", ex.TOKEN)),
    retrieve=extend_schema(tags=["Tokens"], examples=ex.read("One of your tokens", ex.TOKEN)),
)
class TokenViewSet(ReadViewSet):
    serializer_class = write.TokenSerializer
    filterset_class = None
    ordering_fields = ("created_at", "id")
    what = "API token"
    # The answer carries the raw token: it is never stored, so an issue cannot be replayed.
    not_idempotent_actions = frozenset({"create"})
    rules: ClassVar[dict[str, tuple[str | None, str]]] = {
        "list": (None, ""),
        "retrieve": (None, ""),
        "create": (None, ""),
        "revoke": (None, ""),
    }

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return (
            ApiToken.objects.filter(owner_id=self.request.user.pk)
            .select_related("owner")
            .order_by("-created_at", "-id")
        )

    @extend_schema(
        tags=["Tokens"],
        summary="Issue a token for one of your roles (signed-in session only; re-type your password)",
        request=write.TokenRequestSerializer,
        responses={201: write.IssuedTokenSerializer},
        examples=ex.step(
            "A tablet in the cleanroom",
            {"name": "Cleanroom tablet 2", "role": "Cleanroom operator", "password": "••••••••"},
            {**ex.TOKEN, "token": "stroma_Zx8Kq…(shown once)"},
        ),
    )
    def create(self, request: Request) -> HttpResponse:
        if request.auth is not None:
            raise exceptions.PermissionDenied("A token cannot issue tokens: sign in to the site to issue one.")
        if HEADER in request.headers:
            raise exceptions.ValidationError({HEADER: ["A token is shown once, so issuing one cannot be replayed."]})
        data = validated(write.TokenRequestSerializer, request)
        try:
            # Through the login backends, so that django-axes counts and locks repeated wrong passwords.
            checked = authenticate(request._request, username=request.user.get_username(), password=data["password"])
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied("Too many wrong passwords: this account is locked for now.") from exc
        if checked is None or checked.pk != request.user.pk:
            raise exceptions.PermissionDenied("Wrong password; no token was issued.")
        with transaction.atomic():
            issued = api_token_issue(owner=request.user, role=data["role"], name=data["name"], acting_user=request.user)
        body = {**write.TokenSerializer(issued.token).data, "token": issued.raw}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["Tokens"],
        summary="Revoke one of your tokens for good",
        request=write.ReasonRequestSerializer,
        responses={200: write.TokenSerializer},
        examples=ex.step(
            "Tablet lost",
            {"reason": "tablet lost"},
            {**ex.TOKEN, "revoked_at": ex.T, "revoke_reason": "tablet lost"},
            status="200",
        ),
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> HttpResponse:
        token = self.target()
        data = validated(write.ReasonRequestSerializer, request)

        def run() -> Response:
            revoked = api_token_revoke(token=token, acting_user=request.user, reason=data["reason"])
            return Response(write.TokenSerializer(revoked).data)

        return call(request, run)
