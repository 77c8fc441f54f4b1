"""What each workspace role may do. One table, so views, the API and templates agree."""

from __future__ import annotations

from enum import StrEnum

from .models import Role


class Action(StrEnum):
    READ = "read"
    # Agents and the extension directory: what a Manager looks after.
    MANAGE_DIRECTORY = "manage_directory"
    # Trunks, DIDs, credentials, API keys.
    MANAGE_TELEPHONY = "manage_telephony"
    MANAGE_MEMBERS = "manage_members"
    TRANSFER_OWNERSHIP = "transfer_ownership"
    BILLING = "billing"


_ALLOWED: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    # The product's security page makes billing Owner-only as well.
    Role.ADMIN: frozenset(Action) - {Action.TRANSFER_OWNERSHIP, Action.BILLING},
    Role.MANAGER: frozenset({Action.READ, Action.MANAGE_DIRECTORY}),
    Role.VIEWER: frozenset({Action.READ}),
}


def role_can(role: str | None, action: Action) -> bool:
    return role is not None and action in _ALLOWED.get(role, frozenset())
