from __future__ import annotations

from django.http import HttpRequest

from .roles import Action, role_can
from .selectors import memberships_of


def workspace(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    role = membership.role if membership else None
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        "my_memberships": memberships_of(user=user) if user and user.is_authenticated else [],
        "can_manage_telephony": role_can(role, Action.MANAGE_TELEPHONY),
        "can_manage_directory": role_can(role, Action.MANAGE_DIRECTORY),
    }
