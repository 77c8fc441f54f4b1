"""The API's one error shape, {"message", "extra"}, for domain and DRF errors alike."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import ApplicationError


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        message, extra = "Validation failed.", {"fields": response.data}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        message, extra = str(detail), {}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        message = "Too many requests: the workspace's API rate limit was reached."
        extra = {"retry_after_seconds": getattr(exc, "wait", None)}
    response.data = {"message": message, "extra": extra}
    return response
