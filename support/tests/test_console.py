"""The support console: every workspace for support staff, nothing for anyone else."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from smartalex.tenancy.models import Role
from support.selectors import support_console_counts, support_trunk_search
from trunks.models import SipTrunk, TrunkStatus
from trunks.services import trunk_suspend
from trunks.tests.factories import add_event, set_registered

from .conftest import AUTH_USERNAME, TRUNK_PASSWORD

pytestmark = pytest.mark.django_db


def rows(response) -> list[int]:
    return [t.pk for t, _ in response.context["rows"]]


def test_support_sees_every_workspace(support_client, trunk, other_trunk):
    response = support_client.get("/support/")
    assert response.status_code == 200
    assert set(rows(response)) == {trunk.pk, other_trunk.pk}
    html = response.content.decode()
    assert "Acme Dental" in html and "Globex Clinic" in html
    assert AUTH_USERNAME not in html and trunk.ha1_md5 not in html and TRUNK_PASSWORD not in html


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.VIEWER])
def test_workspace_members_get_404(client, member_factory, trunk, other_trunk, role):
    client.force_login(member_factory(role, email=f"{role}-x@acme.test"))
    for url in ["/support/", f"/support/trunks/{other_trunk.pk}/", f"/support/trunks/{trunk.pk}/bundle/"]:
        assert client.get(url).status_code == 404


def test_anonymous_is_sent_to_login(client, trunk):
    response = client.get("/support/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_find_a_failing_trunk_by_its_did(support_client, trunk, other_trunk):
    response = support_client.get("/support/", {"q": "555 0123"})
    assert rows(response) == [trunk.pk]
    assert rows(support_client.get("/support/", {"q": "+27215550199"})) == [other_trunk.pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("globex", "other"), ("Main office", "trunk"), ("203.0.113.10", "trunk"), ("yealink", "other")],
)
def test_search_by_workspace_trunk_source_and_user_agent(support_client, trunk, other_trunk, query, expected):
    set_registered(trunk)
    set_registered(other_trunk, source="198.51.100.5:5060", user_agent="Yealink W60B")
    wanted = {"trunk": trunk, "other": other_trunk}[expected]
    assert rows(support_client.get("/support/", {"q": query})) == [wanted.pk]


def test_filters_and_counts(support_client, tenant, trunk, other_trunk):
    from trunks.tests.factories import make_trunk

    unreachable, _ = make_trunk(tenant, "Branch")
    suspended, _ = make_trunk(tenant, "Old PBX")
    flapping, _ = make_trunk(tenant, "Flappy")
    set_registered(other_trunk)
    set_registered(flapping)
    TrunkStatus.objects.filter(trunk=unreachable).update(state="unreachable")
    trunk_suspend(trunk=suspended)
    add_event(trunk, "auth_failed", seconds_ago=60, reason="wrong_password")
    add_event(other_trunk, "auth_failed", seconds_ago=2 * 3600, reason="wrong_password")  # too old
    for kind, ago in [("registered", 600), ("expired", 400), ("registered", 100)]:
        add_event(flapping, kind, seconds_ago=ago)
    expected = {
        "not_registered": {trunk.pk},
        "unreachable": {unreachable.pk},
        "suspended": {suspended.pk},
        "failing_auth": {trunk.pk},
        "flapping": {flapping.pk},
        "": {trunk.pk, other_trunk.pk, unreachable.pk, suspended.pk, flapping.pk},
    }
    for name, ids in expected.items():
        assert set(rows(support_client.get("/support/", {"filter": name}))) == ids, name
    counts = support_console_counts()
    assert counts == {
        "all": 5,
        "registered": 2,
        "not_registered": 1,
        "unreachable": 1,
        "suspended": 1,
        "failing_auth": 1,
        "flapping": 1,
    }


def test_console_rows_are_not_audited(support_client, trunk):
    from support.models import SupportAccess

    support_client.get("/support/")
    assert not SupportAccess.objects.exists()


def _bulk_trunks(tenant, n: int) -> None:
    now = timezone.now()
    trunks = SipTrunk.objects.bulk_create(
        SipTrunk(
            tenant=tenant,
            name=f"Bulk {i:05d}",
            pbx_domain=f"pbx{i}.example.test",
            auth_username=f"bulk{i:05d}",
        )
        for i in range(n)
    )
    TrunkStatus.objects.bulk_create(
        TrunkStatus(
            trunk=t,
            tenant=tenant,
            state="registered" if i % 3 else "not_registered",
            source=f"198.51.{i // 250}.{i % 250}:5060",
            user_agent="FPBX-16" if i % 2 else "3CXPhoneSystem 20",
            last_register_at=now - timedelta(seconds=i),
        )
        for i, t in enumerate(trunks)
    )


@pytest.mark.slow
def test_ten_thousand_trunks_render_with_bounded_queries(
    support_client, other_tenant, django_assert_max_num_queries
):
    _bulk_trunks(other_tenant, 10_000)
    started = time.perf_counter()
    with django_assert_max_num_queries(12):
        response = support_client.get("/support/", {"filter": "not_registered", "page": "3"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    page = response.context["page"]
    assert page.paginator.count == 3334 and len(page.object_list) == 50
    with django_assert_max_num_queries(12):
        assert support_client.get("/support/", {"q": "FPBX"}).context["page"].paginator.count == 5000
    assert support_trunk_search(query="bulk09999").count() == 0  # auth usernames are not searchable
    assert elapsed < 5, f"console took {elapsed:.2f} s"
