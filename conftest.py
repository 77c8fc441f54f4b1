"""Fixtures shared by every app's tests: two fixed workspaces, their users and API clients.

`other_tenant` is the fixed second workspace every cross-tenant test reads and writes against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

# Django is imported inside the fixtures, so that the pure SIP and media tests also run
# without Django (`pytest -p no:django telephony/tests/sip`).
if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from smartalex.tenancy.models import Role, Tenant, User

PASSWORD = "correct-horse-42"


@pytest.fixture(autouse=True)
def _clean_cache(request):
    # Throttle counters and config versions live in Redis db 15; no test may see another's.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from django.core.cache import cache

        cache.clear()
    yield


@pytest.fixture
def tenant(db) -> Tenant:
    from smartalex.tenancy.services import workspace_create

    tenant, _ = workspace_create(name="Acme Dental", owner_email="owner@acme.test", owner_password=PASSWORD)
    return tenant


@pytest.fixture
def owner(tenant) -> User:
    from smartalex.tenancy.models import User

    return User.objects.get(email="owner@acme.test")


@pytest.fixture
def other_tenant(db) -> Tenant:
    from smartalex.tenancy.services import workspace_create

    tenant, _ = workspace_create(
        name="Globex Clinic", owner_email="owner@globex.test", owner_password=PASSWORD
    )
    return tenant


def make_member(tenant: Tenant, role: Role, email: str | None = None) -> User:
    from smartalex.tenancy.models import User
    from smartalex.tenancy.services import membership_add

    email = email or f"{role}@{tenant.name.split()[0].lower()}.test"
    user = User.objects.create_user(email=email, password=PASSWORD)
    membership_add(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def member_factory(tenant):
    return lambda role, email=None: make_member(tenant, role, email)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def api_client_for(tenant: Tenant, role: Role | None = None) -> APIClient:
    from rest_framework.test import APIClient

    from smartalex.tenancy.models import Role
    from smartalex.tenancy.services import api_key_create

    role = role or Role.ADMIN
    _, raw = api_key_create(tenant=tenant, name=f"test-{role}", role=role)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


@pytest.fixture
def api(tenant) -> APIClient:
    return api_client_for(tenant)


@pytest.fixture
def other_api(other_tenant) -> APIClient:
    return api_client_for(other_tenant)


@pytest.fixture
def support_user(db) -> User:
    from smartalex.tenancy.models import User

    return User.objects.create_user(email="agent@support.test", password=PASSWORD, is_support=True)
