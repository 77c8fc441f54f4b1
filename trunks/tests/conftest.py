import pytest

from smartalex.agents.models import Agent

from .factories import make_trunk, make_trunk_with_did


@pytest.fixture
def created(tenant):
    """A trunk of the workspace under test, with the password it was created with."""
    return make_trunk(tenant)


@pytest.fixture
def trunk(created):
    return created[0]


@pytest.fixture
def other_trunk(other_tenant):
    """The other workspace's trunk, with a DID and an agent: what a cross-tenant test must not touch."""
    trunk = make_trunk_with_did(other_tenant, "Globex main", "+27215550199")
    Agent.objects.create(tenant=other_tenant, name="Globex reception", trunk=trunk)
    return trunk
