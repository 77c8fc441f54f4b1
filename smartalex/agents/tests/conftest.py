import pytest

from smartalex.agents.models import Agent
from trunks.tests.factories import make_trunk, make_trunk_with_did


@pytest.fixture
def trunk(tenant):
    return make_trunk(tenant)[0]


@pytest.fixture
def agent(tenant):
    return Agent.objects.create(
        tenant=tenant, name="Reception", first_message="Thanks for calling Acme Dental."
    )


@pytest.fixture
def other_trunk(other_tenant):
    return make_trunk_with_did(other_tenant, "Globex main", "+27215550199")


@pytest.fixture
def other_agent(other_tenant, other_trunk):
    return Agent.objects.create(tenant=other_tenant, name="Globex reception", trunk=other_trunk)
