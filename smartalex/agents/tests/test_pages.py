"""Agent Studio pages: list, create, the Settings tab and the Telephony tab; roles and workspaces."""

import pytest
from django.urls import reverse

from conftest import make_member
from smartalex.agents.models import Agent
from smartalex.tenancy.models import Role

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def settings_data(**overrides) -> dict:
    data = {
        "name": "Reception",
        "first_message": "Thanks for calling Acme Dental, how can I help?",
        "system_prompt": "",
        "voice": "en-us",
        "language": "en-US",
        "max_call_duration": 300,
        "silence_timeout": 30,
        "fallback_extension": "100",
    }
    data.update(overrides)
    return data


def test_create_then_telephony_tab(owner_client, tenant, trunk):
    response = owner_client.post(reverse("agents:create"), settings_data())
    agent = Agent.objects.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == reverse(
        "agents:telephony", args=[agent.pk]
    )
    page = owner_client.get(response["Location"]).content.decode()
    assert "Main office (pbx.acme.test)" in page and 'data-problem="not_linked"' in page
    saved = owner_client.post(response["Location"], {"trunk": trunk.pk}, **HTMX).content.decode()
    assert "answers calls on trunk “Main office”" in saved and "<html" not in saved
    agent.refresh_from_db()
    assert agent.trunk == trunk
    assert 'data-problem="no_did"' in saved  # the trunk still has no number


def test_create_form_shows_the_defaults(owner_client):
    page = owner_client.get(reverse("agents:create")).content.decode()
    assert 'name="max_call_duration" value="300"' in page and 'name="silence_timeout" value="30"' in page
    assert "up to 14,400 s" in page


def test_edit_settings_with_validation(owner_client, agent):
    url = reverse("agents:settings", args=[agent.pk])
    bad = owner_client.post(url, settings_data(max_call_duration=20_000), **HTMX).content.decode()
    assert "less than or equal to 14400" in bad
    ok = owner_client.post(url, settings_data(first_message="", system_prompt=""), **HTMX).content.decode()
    assert "Saved." in ok and "the AI answers, then hangs up" in ok


def test_moving_a_trunk_needs_the_choice(owner_client, tenant, trunk, agent):
    other = Agent.objects.create(tenant=tenant, name="Night", trunk=trunk)
    url = reverse("agents:telephony", args=[agent.pk])
    refused = owner_client.post(url, {"trunk": trunk.pk}).content.decode()
    assert "already answers for agent “Night”" in refused
    agent.refresh_from_db()
    assert agent.trunk is None
    owner_client.post(url, {"trunk": trunk.pk, "move_trunk": "on"})
    agent.refresh_from_db()
    other.refresh_from_db()
    assert agent.trunk == trunk and other.trunk is None


def test_unlinking(owner_client, trunk, agent):
    agent.trunk = trunk
    agent.save()
    owner_client.post(reverse("agents:telephony", args=[agent.pk]), {"trunk": ""})
    agent.refresh_from_db()
    assert agent.trunk is None


def test_list_shows_trunk_and_problems(owner_client, trunk, agent):
    page = owner_client.get(reverse("agents:list")).content.decode()
    assert "Reception" in page and 'data-problem="not_linked"' in page


def test_delete_asks_first(owner_client, agent):
    assert owner_client.get(reverse("agents:delete", args=[agent.pk])).status_code == 200
    assert Agent.objects.filter(pk=agent.pk).exists()
    owner_client.post(reverse("agents:delete", args=[agent.pk]))
    assert not Agent.objects.filter(pk=agent.pk).exists()


def test_manager_edits_agents(client, tenant, trunk, agent):
    client.force_login(make_member(tenant, Role.MANAGER))
    client.post(reverse("agents:settings", args=[agent.pk]), settings_data(name="Front desk"))
    client.post(reverse("agents:telephony", args=[agent.pk]), {"trunk": trunk.pk})
    agent.refresh_from_db()
    assert agent.name == "Front desk" and agent.trunk == trunk


def test_viewer_reads_but_cannot_change_agents(client, tenant, trunk, agent):
    client.force_login(make_member(tenant, Role.VIEWER))
    assert client.get(reverse("agents:list")).status_code == 200
    page = client.get(reverse("agents:settings", args=[agent.pk])).content.decode()
    assert "<fieldset disabled>" in page
    assert client.get(reverse("agents:create")).status_code == 403
    assert client.post(reverse("agents:create"), settings_data(name="New")).status_code == 403
    assert (
        client.post(reverse("agents:settings", args=[agent.pk]), settings_data(name="X")).status_code == 403
    )
    assert client.post(reverse("agents:telephony", args=[agent.pk]), {"trunk": trunk.pk}).status_code == 403
    assert client.post(reverse("agents:delete", args=[agent.pk])).status_code == 403
    agent.refresh_from_db()
    assert agent.name == "Reception" and agent.trunk is None and Agent.objects.count() == 1


@pytest.mark.parametrize("name", ["settings", "telephony", "delete"])
def test_another_workspaces_agent_is_404(owner_client, other_agent, name):
    url = reverse(f"agents:{name}", args=[other_agent.pk])
    assert owner_client.get(url).status_code == 404
    assert owner_client.post(url, settings_data(name="Hijacked")).status_code == 404
    other_agent.refresh_from_db()
    assert other_agent.name == "Globex reception" and other_agent.trunk is not None


def test_another_workspaces_trunk_cannot_be_picked(owner_client, trunk, agent, other_trunk, other_agent):
    page = owner_client.get(reverse("agents:telephony", args=[agent.pk])).content.decode()
    assert "Globex" not in page
    response = owner_client.post(
        reverse("agents:telephony", args=[agent.pk]), {"trunk": other_trunk.pk, "move_trunk": "on"}
    )
    assert "Select a valid choice" in response.content.decode()
    agent.refresh_from_db()
    other_agent.refresh_from_db()
    assert agent.trunk is None and other_agent.trunk == other_trunk


def test_list_does_not_leak(owner_client, agent, other_agent):
    assert "Globex" not in owner_client.get(reverse("agents:list")).content.decode()
