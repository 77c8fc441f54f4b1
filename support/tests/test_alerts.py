"""Trunk alerts: down longer than N minutes or flapping, e-mailed once, recovery e-mailed once."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from smartalex.tenancy.models import Role
from support.models import AlertKind, TrunkAlert
from support.services import alerts_sweep
from trunks.models import TrunkStatus
from trunks.tests.factories import add_event, set_registered

pytestmark = pytest.mark.django_db


def went_down(trunk, minutes_ago: int) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    set_registered(trunk, registered_at=at - timedelta(hours=1))
    TrunkStatus.objects.filter(trunk=trunk).update(state="not_registered", expires_at=at)


def test_down_trunk_alerts_owners_and_admins_once_then_recovers(trunk, member_factory, settings):
    settings.TRUNK_ALERT_DOWN_MINUTES = 10
    admin = member_factory(Role.ADMIN)
    member_factory(Role.VIEWER)
    went_down(trunk, minutes_ago=5)
    assert alerts_sweep() == {"opened": 0, "closed": 0}  # not long enough yet
    went_down(trunk, minutes_ago=11)
    assert alerts_sweep() == {"opened": 1, "closed": 0}
    assert alerts_sweep() == {"opened": 0, "closed": 0}  # never twice for one incident
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted(["owner@acme.test", admin.email])
    assert "Main office" in mail.outbox[0].subject and "down" in mail.outbox[0].subject
    alert = TrunkAlert.objects.get()
    assert alert.kind == AlertKind.DOWN and alert.is_open
    set_registered(trunk)
    assert alerts_sweep() == {"opened": 0, "closed": 1}
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("Recovered")
    assert not TrunkAlert.objects.get().is_open


def test_never_registered_or_suspended_trunk_is_not_down(trunk, other_trunk):
    from trunks.services import trunk_suspend

    TrunkStatus.objects.filter(trunk=trunk).update(state="not_registered")
    went_down(other_trunk, minutes_ago=60)
    trunk_suspend(trunk=other_trunk)
    assert alerts_sweep() == {"opened": 0, "closed": 0}
    assert mail.outbox == []


def test_unreachable_trunk_alerts(trunk):
    set_registered(trunk)
    TrunkStatus.objects.filter(trunk=trunk).update(state="unreachable")
    add_event(trunk, "unreachable", seconds_ago=15 * 60)
    assert alerts_sweep()["opened"] == 1
    assert TrunkAlert.objects.get().state_seen == "unreachable"


def test_flapping_alerts_and_banner_shows_to_the_workspace_only(trunk, owner_client, client, other_tenant):
    from smartalex.tenancy.models import User

    set_registered(trunk)
    for kind, ago in [("registered", 600), ("expired", 400), ("registered", 100)]:
        add_event(trunk, kind, seconds_ago=ago)
    assert alerts_sweep()["opened"] == 1
    assert TrunkAlert.objects.get().kind == AlertKind.FLAPPING
    html = owner_client.get("/trunks/").content.decode()
    assert 'data-alert="flapping"' in html and "Main office" in html
    client.force_login(User.objects.get(email="owner@globex.test"))
    assert 'data-alert="' not in client.get("/trunks/").content.decode()


def test_down_banner_on_the_trunk_pages(trunk, owner_client):
    went_down(trunk, minutes_ago=30)
    alerts_sweep()
    html = owner_client.get(f"/trunks/{trunk.pk}/").content.decode()
    assert 'data-alert="down"' in html and f"/trunks/{trunk.pk}/health/" in html
