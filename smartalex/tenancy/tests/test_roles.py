import pytest

from smartalex.tenancy.models import Role
from smartalex.tenancy.roles import Action, role_can


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.OWNER, set(Action)),
        (Role.ADMIN, set(Action) - {Action.TRANSFER_OWNERSHIP, Action.BILLING}),
        (Role.MANAGER, {Action.READ, Action.MANAGE_DIRECTORY}),
        (Role.VIEWER, {Action.READ}),
        (None, set()),
    ],
)
def test_role_table(role, allowed):
    assert {a for a in Action if role_can(role, a)} == allowed
