"""API-key authentication. Kept apart from the view base: DRF's settings import it while
`rest_framework.views` is still loading, so it must not import APIView."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .models import ApiKey
from .services import api_key_authenticate


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Stands in for `request.user` when a request is authenticated by a workspace API key."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_support: bool = False
    is_staff: bool = False

    @property
    def pk(self) -> None:
        return None

    def __str__(self) -> str:
        return f"api-key:{self.key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the key as `Authorization: Bearer <key>`.")
        key = api_key_authenticate(raw_key=parts[1].decode("latin-1"))
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return ApiKeyPrincipal(key=key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A workspace API key."}
