"""Engine events → a trunk's status and history (the worker's service and its Celery task)."""

import time

import pytest

from telephony import events as ev
from telephony.models import SecurityEvent
from telephony.tasks import record_engine_events
from trunks.models import RegistrationState, TrunkEvent, TrunkStatus
from trunks.services import TrunkSettings, trunk_create
from trunks.status import trunk_events_apply

pytestmark = pytest.mark.django_db


@pytest.fixture
def trunk(tenant):
    trunk, _ = trunk_create(tenant=tenant, values=TrunkSettings(name="Main PBX", pbx_domain="pbx.acme.test"))
    return trunk


def registered(trunk, at, **kw):
    values = dict(
        trunk_id=trunk.pk,
        contact="sip:pbx@203.0.113.5:5060",
        source="203.0.113.5:5060",
        transport="udp",
        user_agent="FPBX-16",
        expires=300,
        at=at,
    )
    values.update(kw)
    return ev.TrunkRegistered(**values)


def test_registration_sets_status_and_history(trunk):
    now = time.time()
    trunk_events_apply(events=[registered(trunk, now)])
    status = TrunkStatus.objects.get(trunk=trunk)
    assert status.state == RegistrationState.REGISTERED
    assert status.source == "203.0.113.5:5060" and status.user_agent == "FPBX-16"
    assert abs((status.expires_at - status.last_register_at).total_seconds() - 300) < 1
    assert list(TrunkEvent.objects.filter(trunk=trunk).values_list("kind", flat=True)) == ["registered"]


def test_refreshes_update_status_without_history(trunk):
    now = time.time()
    trunk_events_apply(events=[registered(trunk, now)])
    trunk_events_apply(
        events=[ev.TrunkRefreshed(trunk_id=trunk.pk, source="203.0.113.5:5060", expires=600, at=now + 60)]
    )
    status = TrunkStatus.objects.get(trunk=trunk)
    assert abs((status.expires_at - status.last_register_at).total_seconds() - 600) < 1
    assert TrunkEvent.objects.filter(trunk=trunk).count() == 1


def test_auth_failure_is_in_words_and_unknown_users_go_to_support(trunk):
    now = time.time()
    trunk_events_apply(
        events=[
            ev.RegisterAuthFailed(
                trunk_id=trunk.pk,
                username=trunk.auth_username,
                reason="wrong_password",
                source="198.51.100.7:5060",
                transport="udp",
                user_agent="x",
                at=now,
            ),
            ev.RegisterAuthFailed(
                trunk_id=None,
                username="admin",
                reason="unknown_user",
                source="198.51.100.9:5060",
                transport="udp",
                user_agent="friendly",
                at=now,
            ),
        ]
    )
    status = TrunkStatus.objects.get(trunk=trunk)
    assert status.last_failure == "wrong password"
    assert TrunkEvent.objects.get(trunk=trunk).detail["reason"] == "wrong_password"
    assert SecurityEvent.objects.get().detail["username"] == "admin"


def test_expiry_after_a_refresh_is_ignored(trunk):
    now = time.time()
    trunk_events_apply(events=[registered(trunk, now, expires=60)])
    trunk_events_apply(events=[ev.TrunkRefreshed(trunk_id=trunk.pk, source="s", expires=60, at=now + 50)])
    trunk_events_apply(events=[ev.TrunkExpired(trunk_id=trunk.pk, contact="c", at=now + 61)])
    assert TrunkStatus.objects.get(trunk=trunk).state == RegistrationState.REGISTERED
    trunk_events_apply(events=[ev.TrunkExpired(trunk_id=trunk.pk, contact="c", at=now + 111)])
    assert TrunkStatus.objects.get(trunk=trunk).state == RegistrationState.NOT_REGISTERED


def test_unreachable_then_reachable(trunk):
    now = time.time()
    trunk_events_apply(events=[registered(trunk, now)])
    trunk_events_apply(
        events=[ev.TrunkReachability(trunk_id=trunk.pk, reachable=False, latency_ms=None, at=now + 1)]
    )
    assert TrunkStatus.objects.get(trunk=trunk).state == RegistrationState.UNREACHABLE
    trunk_events_apply(
        events=[ev.TrunkReachability(trunk_id=trunk.pk, reachable=True, latency_ms=12.5, at=now + 2)]
    )
    status = TrunkStatus.objects.get(trunk=trunk)
    assert status.state == RegistrationState.REGISTERED and status.options_latency_ms == 12.5
    kinds = list(TrunkEvent.objects.filter(trunk=trunk).order_by("at").values_list("kind", flat=True))
    assert kinds == ["registered", "unreachable", "reachable"]


def test_task_is_safe_to_retry(trunk):
    batch = [ev.encode(registered(trunk, time.time()))]
    record_engine_events.apply(args=[batch]).get()
    record_engine_events.apply(args=[batch]).get()
    assert TrunkEvent.objects.filter(trunk=trunk).count() == 1


def test_events_for_a_deleted_trunk_are_dropped(trunk):
    event = registered(trunk, time.time())
    trunk.delete()
    assert trunk_events_apply(events=[event]) == 0
