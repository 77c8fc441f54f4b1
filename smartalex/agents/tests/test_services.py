"""Agent Studio rules: settings limits, the one-agent-per-trunk link, and the troubleshooting warnings."""

import pytest

from smartalex.agents.models import Agent
from smartalex.agents.selectors import agent_problems
from smartalex.agents.services import AgentSettings, agent_create, agent_link_trunk, agent_update
from smartalex.errors import ApplicationError
from trunks.config_version import config_version
from trunks.services import did_add, trunk_suspend
from trunks.tests.factories import make_trunk

pytestmark = pytest.mark.django_db


def test_defaults_follow_the_product(tenant):
    agent = agent_create(tenant=tenant, values=AgentSettings(name="Reception"))
    assert (agent.max_call_duration, agent.silence_timeout) == (300, 30)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_call_duration": 14_401}, "max_call_duration"),
        ({"max_call_duration": 5}, "max_call_duration"),
        ({"voice": "klingon"}, "voice"),
        ({"language": "xx-XX"}, "language"),
        ({"fallback_extension": "ext 100; drop"}, "fallback_extension"),
        ({"name": "  "}, "name"),
    ],
)
def test_settings_are_validated(tenant, changes, field):
    with pytest.raises(ApplicationError) as exc:
        agent_create(tenant=tenant, values=AgentSettings(**{"name": "Reception", **changes}))
    assert exc.value.extra.get("field") == field
    assert not Agent.objects.exists()


def test_longest_call_allowed(tenant):
    agent = agent_create(tenant=tenant, values=AgentSettings(name="Long", max_call_duration=14_400))
    assert agent.max_call_duration == 14_400


def test_names_unique_per_workspace(tenant, other_tenant):
    agent_create(tenant=tenant, values=AgentSettings(name="Reception"))
    with pytest.raises(ApplicationError, match="already has an agent"):
        agent_create(tenant=tenant, values=AgentSettings(name="reception"))
    agent_create(tenant=other_tenant, values=AgentSettings(name="Reception"))


def test_linking_a_taken_trunk_is_refused_unless_moved(tenant, trunk):
    first = agent_create(tenant=tenant, values=AgentSettings(name="Day"), trunk=trunk)
    second = agent_create(tenant=tenant, values=AgentSettings(name="Night"))
    with pytest.raises(ApplicationError) as exc:
        agent_link_trunk(agent=second, trunk=trunk)
    assert exc.value.status_code == 409 and "already answers for agent “Day”" in exc.value.message
    first.refresh_from_db()
    assert first.trunk == trunk
    agent_link_trunk(agent=second, trunk=trunk, move=True)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.trunk is None and second.trunk == trunk


def test_another_workspaces_trunk_cannot_be_linked(agent, other_trunk):
    with pytest.raises(ApplicationError) as exc:
        agent_link_trunk(agent=agent, trunk=other_trunk)
    assert exc.value.status_code == 404
    agent.refresh_from_db()
    assert agent.trunk is None


def test_changes_reach_the_engines(tenant, trunk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        agent = agent_create(tenant=tenant, values=AgentSettings(name="Reception"))
    before = config_version()
    with django_capture_on_commit_callbacks(execute=True):
        agent_link_trunk(agent=agent, trunk=trunk)
    with django_capture_on_commit_callbacks(execute=True):
        agent_update(agent=agent, values=AgentSettings(name="Reception", first_message="Hello"))
    assert config_version() == before + 2


def test_problems_follow_the_troubleshooting_guide(tenant):
    agent = agent_create(tenant=tenant, values=AgentSettings(name="Empty"))
    assert [p.code for p in agent_problems(agent=agent)] == ["not_linked", "no_greeting"]
    assert "the AI answers, then hangs up" in agent_problems(agent=agent)[1].message
    trunk, _ = make_trunk(tenant)
    agent_link_trunk(agent=agent, trunk=trunk)
    agent_update(agent=agent, values=AgentSettings(name="Empty", system_prompt="You are the receptionist."))
    trunk_suspend(trunk=trunk)
    agent.refresh_from_db()
    codes = [p.code for p in agent_problems(agent=agent)]
    assert (
        "suspended" in codes
        and "no_did" in codes
        and "not_linked" not in codes
        and "no_greeting" not in codes
    )
    did_add(trunk=trunk, number="+14155550100")
    assert "no_did" not in [p.code for p in agent_problems(agent=agent)]


def test_extension_count_is_checked_only_when_the_extensions_model_exists(tenant, trunk):
    from django.apps import apps

    from trunks.selectors import trunk_extension_count

    try:
        extension_model = apps.get_model("extensions", "Extension")
    except LookupError:  # the extensions app has no model yet: nothing to count, no warning
        assert trunk_extension_count(trunk=trunk) is None
        return
    agent = agent_create(tenant=tenant, values=AgentSettings(name="R", first_message="Hi"), trunk=trunk)
    assert trunk_extension_count(trunk=trunk) == 0
    assert "no_extensions" in [p.code for p in agent_problems(agent=agent)]
    extension_model.objects.create(tenant=tenant, trunk=trunk, number="101", display_name="Sales")
    assert trunk_extension_count(trunk=trunk) == 1
    assert "no_extensions" not in [p.code for p in agent_problems(agent=agent)]
