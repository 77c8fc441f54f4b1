from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .roles import Action, role_can

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def workspace_required(action: Action = Action.READ, *, write: Action | None = None) -> Callable:
    """A page of the current workspace: logged in, a member, and the role allows it.

    `action` guards reads; `write` (default: `action`) guards POST and the other unsafe methods,
    so a page everyone may read can still need a stronger role to change anything.
    """
    write = write or action

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.tenant is None:
                return redirect("home")
            needed = action if request.method in SAFE_METHODS else write
            if not role_can(request.membership.role, needed):
                raise PermissionDenied("Your role in this workspace does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
