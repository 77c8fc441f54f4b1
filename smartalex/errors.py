"""The domain's one error type. Services raise it; the API and the pages show its message."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A rule of the domain was broken; `message` is safe to show to the user."""

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.status_code = status_code
