"""The engine's configuration snapshot: lookups by username, DID and source address; live reload."""

import asyncio

import pytest
from django.db import connections

from smartalex.agents.models import Agent
from telephony.config import ConfigWatcher, build_config, load_config_from_db
from trunks.config_version import config_version
from trunks.models import AuthType
from trunks.services import TrunkSettings, did_add, trunk_create, trunk_suspend


def suspend_and_close(trunk):
    try:
        trunk_suspend(trunk=trunk)
    finally:
        connections.close_all()


def row(**kw):
    base = dict(
        id=1,
        tenant_id=1,
        name="t",
        pbx_domain="pbx.test",
        auth_username="sa1",
        ha1_md5="m",
        ha1_sha256="s",
        allowed_ips=[],
        dids=[],
    )
    base.update(kw)
    return base


def test_source_lookup_by_address_and_block():
    config = build_config(
        [
            row(id=1, allowed_ips=["203.0.113.5"]),
            row(id=2, auth_username="sa2", allowed_ips=["198.51.100.0/24"]),
        ],
        version=3,
    )
    assert [t.id for t in config.trunks_for_source("203.0.113.5")] == [1]
    assert [t.id for t in config.trunks_for_source("198.51.100.77")] == [2]
    assert config.trunks_for_source("192.0.2.1") == () and not config.is_whitelisted("not-an-ip")
    assert config.by_username["sa2"].id == 2


@pytest.mark.django_db(transaction=True)
def test_snapshot_from_database_and_reload_on_change(tenant):
    trunk, _ = trunk_create(tenant=tenant, values=TrunkSettings(name="A", pbx_domain="pbx.acme.test"))
    ip_trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(
            name="B", pbx_domain="10.0.0.2", auth_type=AuthType.IP_WHITELIST, allowed_ips=("203.0.113.9",)
        ),
    )
    did_add(trunk=trunk, number="+14155550100")
    Agent.objects.create(tenant=tenant, name="Reception", first_message="Hello", trunk=trunk)
    config = load_config_from_db()
    assert config.version == config_version() > 0
    main = config.by_username[trunk.auth_username]
    assert main.agent.first_message == "Hello" and config.by_did["+14155550100"] is main
    assert main.ha1("SHA-256") == trunk.ha1_sha256 and len(main.ha1("MD5")) == 32
    assert config.trunks_for_source("203.0.113.9")[0].id == ip_trunk.pk
    assert ip_trunk.auth_username is None

    async def watch_suspension():
        watcher = ConfigWatcher(poll_interval=0.05)
        await watcher.start()
        assert not watcher.current.trunks[trunk.pk].suspended
        task = asyncio.create_task(watcher.run())
        await asyncio.to_thread(suspend_and_close, trunk)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if watcher.current.trunks[trunk.pk].suspended:
                break
        task.cancel()
        return watcher.current.trunks[trunk.pk].suspended

    assert asyncio.run(watch_suspension()) is True
