"""/api/v1/agents: CRUD with the Telephony tab's `trunk`; roles; the other workspace's ids and trunks."""

import pytest

from conftest import api_client_for
from smartalex.agents.models import Agent
from smartalex.tenancy.models import Role

pytestmark = pytest.mark.django_db
AGENTS = "/api/v1/agents/"


def test_crud_with_trunk(api, tenant, trunk):
    created = api.post(
        AGENTS, {"name": "Reception", "first_message": "Hello", "trunk": trunk.pk}, format="json"
    )
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["trunk"] == trunk.pk and data["max_call_duration"] == 300 and data["silence_timeout"] == 30
    assert "no_did" in [p["code"] for p in data["problems"]] and "not_linked" not in str(data["problems"])
    url = f"{AGENTS}{data['id']}/"
    patched = api.patch(url, {"max_call_duration": 14_400, "trunk": None}, format="json").json()
    assert patched["max_call_duration"] == 14_400 and patched["trunk"] is None
    assert api.get(AGENTS).json()["results"][0]["name"] == "Reception"
    put = api.put(url, {"name": "Front desk", "trunk": trunk.pk}, format="json")
    assert put.status_code == 200 and put.json()["trunk"] == trunk.pk and put.json()["name"] == "Front desk"
    assert api.delete(url).status_code == 204 and not Agent.objects.exists()


def test_limits(api):
    response = api.post(AGENTS, {"name": "Long", "max_call_duration": 14_401}, format="json")
    assert response.status_code == 400 and "max_call_duration" in response.json()["extra"]["fields"]
    assert not Agent.objects.exists()


def test_taken_trunk_is_409_unless_moved(api, tenant, trunk):
    Agent.objects.create(tenant=tenant, name="Day", trunk=trunk)
    refused = api.post(AGENTS, {"name": "Night", "trunk": trunk.pk}, format="json")
    assert refused.status_code == 409 and refused.json()["extra"]["linked_agent"] == "Day"
    assert not Agent.objects.filter(name="Night").exists()  # nothing half-done
    moved = api.post(AGENTS, {"name": "Night", "trunk": trunk.pk, "move_trunk": True}, format="json")
    assert moved.status_code == 201 and Agent.objects.get(name="Day").trunk is None


def test_failed_link_leaves_settings_unchanged(api, tenant, trunk, agent):
    Agent.objects.create(tenant=tenant, name="Day", trunk=trunk)
    response = api.patch(f"{AGENTS}{agent.pk}/", {"name": "Changed", "trunk": trunk.pk}, format="json")
    assert response.status_code == 409
    agent.refresh_from_db()
    assert agent.name == "Reception" and agent.trunk is None


def test_another_workspaces_trunk_is_refused_like_a_missing_one(api, agent, other_trunk, other_agent):
    url = f"{AGENTS}{agent.pk}/"
    theirs = api.patch(url, {"trunk": other_trunk.pk, "move_trunk": True}, format="json")
    missing = api.patch(url, {"trunk": other_trunk.pk + 999}, format="json")
    assert theirs.status_code == missing.status_code == 400
    assert str(other_trunk.pk) in str(theirs.json()) and "does not exist" in str(theirs.json())
    created = api.post(AGENTS, {"name": "Sneaky", "trunk": other_trunk.pk}, format="json")
    assert created.status_code == 400 and not Agent.objects.filter(name="Sneaky").exists()
    agent.refresh_from_db()
    other_agent.refresh_from_db()
    assert agent.trunk is None and other_agent.trunk == other_trunk


def test_another_workspaces_agent_is_404_and_unchanged(api, other_agent):
    url, missing = f"{AGENTS}{other_agent.pk}/", f"{AGENTS}{other_agent.pk + 999}/"
    assert api.get(url).status_code == api.get(missing).status_code == 404
    assert api.patch(url, {"name": "Hijacked"}, format="json").status_code == 404
    assert api.put(url, {"name": "Hijacked"}, format="json").status_code == 404
    assert api.delete(url).status_code == 404
    other_agent.refresh_from_db()
    assert other_agent.name == "Globex reception" and other_agent.trunk is not None


def test_list_does_not_leak(api, agent, other_agent):
    assert [a["name"] for a in api.get(AGENTS).json()["results"]] == ["Reception"]


def test_manager_edits_agents_viewer_does_not(tenant, agent, trunk):
    manager = api_client_for(tenant, Role.MANAGER)
    assert manager.patch(f"{AGENTS}{agent.pk}/", {"trunk": trunk.pk}, format="json").status_code == 200
    assert manager.post(AGENTS, {"name": "Second"}, format="json").status_code == 201
    viewer = api_client_for(tenant, Role.VIEWER)
    assert viewer.get(AGENTS).status_code == 200
    assert viewer.post(AGENTS, {"name": "Third"}, format="json").status_code == 403
    assert (
        viewer.patch(f"{AGENTS}{agent.pk}/", {"name": "X", "trunk": None}, format="json").status_code == 403
    )
    assert viewer.delete(f"{AGENTS}{agent.pk}/").status_code == 403
    agent.refresh_from_db()
    assert (
        agent.name == "Reception" and agent.trunk == trunk and not Agent.objects.filter(name="Third").exists()
    )
