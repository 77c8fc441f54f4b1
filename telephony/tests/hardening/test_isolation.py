"""Tenant isolation, proven by walking everything there is rather than by listing cases:

- every portal URL with an id, called as workspace A with workspace B's ids: 403/404, never a 200,
  and B's rows identical afterwards (GET and POST);
- every /api/v1 operation in the OpenAPI schema, called with A's key and B's ids: the same;
- schemathesis generating requests against every operation with A's key: B's names never appear;
- CSRF: every portal POST without a token is refused with 403.
"""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from telephony.tests.hardening.workspaces import populate, snapshot

pytestmark = pytest.mark.django_db

ACCEPTABLE = {403, 404, 405}  # 405: a POST-only view refuses a GET before it looks anything up


def portal_patterns() -> list[tuple[str, list[str]]]:
    """(route template, keyword names) of every portal URL (not admin, not the API)."""
    found = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                route = prefix + str(p.pattern)
                if not route.startswith(("admin/", "api/")):
                    walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if route.startswith("api/"):
                    continue
                found.append((route, re.findall(r"<(?:\w+:)?(\w+)>", route)))

    walk(get_resolver().url_patterns)
    return found


def fill(route: str, ids: dict) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


@pytest.fixture
def workspace_b(tenant, other_tenant):
    from trunks.tests.factories import make_trunk

    make_trunk(tenant)  # A owns a trunk too, so B's ids are not simply the only ones there are
    return populate(other_tenant)


@pytest.fixture
def client_a(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_the_walk_covers_the_portal():
    routes = [route for route, names in portal_patterns() if names]
    assert len(routes) >= 30, routes  # trunks, extensions, agents, calls, support, api keys
    assert any("trunk_id" in r for r in routes) and any("agent_id" in r for r in routes)


def test_every_portal_url_with_b_ids_is_refused_to_a(client_a, workspace_b, tenant):
    before = snapshot(workspace_b.tenant)
    leaks = []
    for route, names in portal_patterns():
        if not names:
            continue
        url = fill(route, workspace_b.ids)
        for method in ("get", "post"):
            for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
                # follow: a redirect is fine only if where it leads is refused too
                response = getattr(client_a, method)(url, follow=True, **htmx)
                body = response.content.decode(errors="replace")
                if response.status_code not in ACCEPTABLE or any(m in body for m in workspace_b.markers):
                    leaks.append((method.upper(), url, bool(htmx), response.status_code))
    assert leaks == []
    assert snapshot(workspace_b.tenant) == before


def test_b_itself_reaches_its_pages(workspace_b):
    """The control: the same ids work for their owner, so a 404 above means refused, not broken."""
    from smartalex.tenancy.models import User

    client = Client()
    client.force_login(User.objects.get(email="owner@globex.test"))
    for name in ("trunks/<int:trunk_id>/", "agents/<int:agent_id>/", "calls/<int:call_id>/",
                 "settings/pbx/trunks/<int:trunk_id>/"):  # fmt: skip
        response = client.get(fill(name, workspace_b.ids))
        assert response.status_code == 200, name


# --- the API, operation by operation from the schema ---------------------------------------------


def api_operations(api) -> list[tuple[str, str, list[str]]]:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = []
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((path, method, re.findall(r"{(\w+)}", path)))
    return operations


def test_every_api_operation_with_b_ids_is_404_for_a(api, workspace_b):
    ids = dict(workspace_b.ids)
    operations = api_operations(api)
    with_ids = [op for op in operations if op[2]]
    assert len(with_ids) >= 10, operations
    before = snapshot(workspace_b.tenant)
    leaks, validated_first = [], []
    for path, method, names in with_ids:
        # Each placeholder gets B's id of the kind its path names (a trunk id under /agents/ proves nothing).
        values = _ids_for(path, names, ids)
        url = re.sub(r"{(\w+)}", lambda m, v=values: str(v[m.group(1)]), path)
        missing = re.sub(r"{(\w+)}", "999999", path)
        response = getattr(api, method)(url, data={}, format="json")
        body = response.content.decode(errors="replace")
        if any(m in body for m in workspace_b.markers) or response.status_code < 400:
            leaks.append((method.upper(), url, response.status_code))
        elif response.status_code not in ACCEPTABLE:
            # Validation before the lookup (400, 415) is harmless only if a missing id gets the
            # very same answer: then nothing tells B's object from no object.
            control = getattr(api, method)(missing, data={}, format="json")
            if (control.status_code, control.content) != (response.status_code, response.content):
                leaks.append((method.upper(), url, response.status_code, control.status_code))
            else:
                validated_first.append((method.upper(), path, response.status_code))
    assert leaks == []
    assert snapshot(workspace_b.tenant) == before
    print("answered before the tenant lookup (same for a missing id):", validated_first)


def _ids_for(path: str, names: list[str], ids: dict) -> dict:
    kinds = {"trunks": "trunk_id", "dids": "did_id", "extensions": "extension_id", "agents": "agent_id",
             "calls": "call_id", "api-keys": "key_id"}  # fmt: skip
    resolved = {}
    segments = path.strip("/").split("/")
    for name in names:
        placeholder = "{" + name + "}"
        position = segments.index(placeholder)
        kind = kinds.get(segments[position - 1], "trunk_id")
        resolved[name] = ids[kind]
    return resolved


def test_api_lists_never_show_b(api, workspace_b):
    for path, method, names in api_operations(api):
        if method == "get" and not names:
            body = api.get(path).content.decode(errors="replace")
            assert not any(m in body for m in workspace_b.markers), path


# --- B's ids in request bodies (the foreign-key way in) -----------------------------------------


def test_b_trunk_cannot_be_linked_to_an_agent_of_a(api, client_a, workspace_b, tenant):
    """The one place a body names another object: an agent's trunk (API and Telephony tab)."""
    from smartalex.agents.services import AgentSettings, agent_create

    b_trunk = workspace_b.ids["trunk_id"]
    mine = agent_create(tenant=tenant, values=AgentSettings(name="Acme reception"))
    before = snapshot(workspace_b.tenant)
    created = api.post(
        "/api/v1/agents/", {"name": "Thief", "trunk": b_trunk, "move_trunk": True}, format="json"
    )
    patched = api.patch(f"/api/v1/agents/{mine.pk}/", {"trunk": b_trunk, "move_trunk": True}, format="json")
    page = client_a.post(f"/agents/{mine.pk}/telephony/", {"trunk": b_trunk, "move_trunk": "on"})
    assert created.status_code == 400 and patched.status_code == 400, (created.content, patched.content)
    assert page.status_code in (200, 400)  # the form again, with its error
    mine.refresh_from_db()
    assert mine.trunk_id is None
    assert not any(m in r.content.decode() for r in (created, patched, page) for m in workspace_b.markers)
    assert snapshot(workspace_b.tenant) == before


# --- schemathesis: generated requests with A's key, looking for B ---------------------------------


def _checker(operation, key: str, markers: list[str], seen: list, errors: list):
    """One operation's property test: whatever schemathesis sends with A's key, B never shows."""

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=25,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(headers={"Authorization": key})
        seen.append((operation.label, response.status_code))
        found = [m for m in markers if m in response.text]
        if found or response.status_code >= 500:
            errors.append((operation.label, response.status_code, found or response.text[:300]))

    return check


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_never_reaches_b(tenant, workspace_b, settings):
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    # The throttle (60/s per workspace) has its own tests; here it would only turn answers into 429s.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"workspace": "100000/s"}}
    from smartalex.tenancy.services import api_key_create

    _, raw_key = api_key_create(tenant=tenant, name="schemathesis")  # an Admin key of workspace A
    key = f"Bearer {raw_key}"
    before = snapshot(workspace_b.tenant)
    seen, errors = [], []
    # As Django's test client does: a request must not close the test's connection (its transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        for result in schema.get_all_operations():
            _checker(result.ok(), key, workspace_b.markers, seen, errors)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    operations = {label for label, _ in seen}
    print(f"schemathesis: {len(seen)} requests over {len(operations)} operations")
    assert len(operations) >= 15, seen
    assert errors == []
    assert snapshot(workspace_b.tenant) == before


# --- CSRF -----------------------------------------------------------------------------------------


def test_every_portal_post_without_a_csrf_token_is_403(owner, tenant):
    from trunks.tests.factories import make_trunk

    trunk, _ = make_trunk(tenant)
    own = populate_ids_of_a(tenant, trunk)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    anonymous = Client(enforce_csrf_checks=True)
    before = snapshot(tenant)
    allowed = []
    for route, _ in portal_patterns():
        url = fill(route, own)
        for who in (client, anonymous):
            response = who.post(url, {"name": "x"})
            if response.status_code != 403:
                allowed.append((url, response.status_code, who is anonymous))
    assert allowed == []
    assert snapshot(tenant) == before


def populate_ids_of_a(tenant, trunk) -> dict:
    """A's own ids: without the token even the owner's legitimate POST must fail."""
    ids = {name: 999_999 for name in ("did_id", "extension_id", "agent_id", "call_id", "trace_id", "key_id")}
    ids.update(trunk_id=trunk.pk, pk=trunk.pk, token="00000000-0000-0000-0000-000000000000")
    return ids
