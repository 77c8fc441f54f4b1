"""The engine's view of the portal's configuration: an immutable in-memory snapshot.

The SIP hot path never queries the database (DESIGN.md convention 9). A snapshot is built from
the database in one go and swapped atomically; `ConfigWatcher` rebuilds it when the portal bumps
the config version (trunks/config_version.py), so changes reach every engine within 2 s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AgentConfig:
    id: int
    name: str
    first_message: str
    system_prompt: str
    voice: str
    language: str
    max_call_duration: int
    silence_timeout: int
    fallback_extension: str


@dataclass(frozen=True)
class TrunkConfig:
    id: int
    tenant_id: int
    name: str
    pbx_domain: str
    auth_username: str | None
    ha1_md5: str
    ha1_sha256: str
    networks: tuple[IpNetwork, ...]
    transport: str
    codecs: tuple[str, ...]
    max_concurrent_calls: int
    suspended: bool
    agent: AgentConfig | None
    dids: tuple[str, ...]

    def ha1(self, algorithm: str) -> str | None:
        value = self.ha1_sha256 if algorithm.upper() in ("SHA-256", "SHA256") else self.ha1_md5
        return value or None


@dataclass(frozen=True)
class EngineConfig:
    version: int = 0
    trunks: dict[int, TrunkConfig] = field(default_factory=dict)
    by_username: dict[str, TrunkConfig] = field(default_factory=dict)
    by_did: dict[str, TrunkConfig] = field(default_factory=dict)
    # Single addresses are the common case: a dict lookup; blocks are scanned (few per platform).
    by_address: dict[str, tuple[TrunkConfig, ...]] = field(default_factory=dict)
    by_block: tuple[tuple[IpNetwork, TrunkConfig], ...] = ()

    def trunks_for_source(self, ip: str) -> tuple[TrunkConfig, ...]:
        """The IP-whitelist trunks that allow this source address (several workspaces may share a PBX)."""
        found = self.by_address.get(ip, ())
        if not self.by_block:
            return found
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return found
        extra = tuple(t for net, t in self.by_block if address in net and t not in found)
        return found + extra

    def is_whitelisted(self, ip: str) -> bool:
        return bool(self.trunks_for_source(ip))


def build_config(rows: list[dict[str, Any]], *, version: int) -> EngineConfig:
    """Builds the snapshot from plain rows (one per trunk), so it can be tested without a database."""
    trunks: dict[int, TrunkConfig] = {}
    by_username: dict[str, TrunkConfig] = {}
    by_did: dict[str, TrunkConfig] = {}
    by_address: dict[str, list[TrunkConfig]] = {}
    by_block: list[tuple[IpNetwork, TrunkConfig]] = []
    for row in rows:
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in row.get("allowed_ips") or ())
        trunk = TrunkConfig(
            id=row["id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            pbx_domain=row["pbx_domain"],
            auth_username=row.get("auth_username"),
            ha1_md5=row.get("ha1_md5") or "",
            ha1_sha256=row.get("ha1_sha256") or "",
            networks=networks,
            transport=row.get("transport", "udp"),
            codecs=tuple(row.get("codecs") or ("PCMU", "PCMA", "G722")),
            max_concurrent_calls=row.get("max_concurrent_calls", 10),
            suspended=bool(row.get("suspended")),
            agent=AgentConfig(**row["agent"]) if row.get("agent") else None,
            dids=tuple(row.get("dids") or ()),
        )
        trunks[trunk.id] = trunk
        if trunk.auth_username:
            by_username[trunk.auth_username] = trunk
        for did in trunk.dids:
            by_did[did] = trunk
        for net in networks:
            if net.num_addresses == 1:
                by_address.setdefault(str(net.network_address), []).append(trunk)
            else:
                by_block.append((net, trunk))
    return EngineConfig(
        version=version,
        trunks=trunks,
        by_username=by_username,
        by_did=by_did,
        by_address={k: tuple(v) for k, v in by_address.items()},
        by_block=tuple(by_block),
    )


def load_config_from_db() -> EngineConfig:
    """Reads every trunk with its DIDs and agent (a few queries, whatever the number of trunks)."""
    from smartalex.agents.models import Agent
    from trunks.config_version import config_version
    from trunks.models import AuthType, Did, SipTrunk

    version = config_version()
    dids: dict[int, list[str]] = {}
    for trunk_id, number in Did.objects.values_list("trunk_id", "number"):
        dids.setdefault(trunk_id, []).append(number)
    agent_fields = [
        "id",
        "name",
        "first_message",
        "system_prompt",
        "voice",
        "language",
        "max_call_duration",
        "silence_timeout",
        "fallback_extension",
    ]
    agents = {
        a["trunk_id"]: a for a in Agent.objects.filter(trunk__isnull=False).values("trunk_id", *agent_fields)
    }
    rows = []
    for t in SipTrunk.objects.values(
        "id",
        "tenant_id",
        "name",
        "pbx_domain",
        "auth_type",
        "auth_username",
        "ha1_md5",
        "ha1_sha256",
        "allowed_ips",
        "transport",
        "codecs",
        "max_concurrent_calls",
        "suspended_at",
    ):
        agent = agents.get(t["id"])
        rows.append(
            {
                **t,
                "auth_username": t["auth_username"] if t["auth_type"] != AuthType.IP_WHITELIST else None,
                "allowed_ips": t["allowed_ips"] if t["auth_type"] != AuthType.CREDENTIALS else [],
                "suspended": t["suspended_at"] is not None,
                "agent": {k: agent[k] for k in agent_fields} if agent else None,
                "dids": dids.get(t["id"], []),
            }
        )
    return build_config(rows, version=version)


class ConfigWatcher:
    """Keeps `current` fresh: polls the shared version counter, rebuilds off the event loop."""

    def __init__(
        self,
        *,
        load: Callable[[], EngineConfig] | None = None,
        read_version: Callable[[], int] | None = None,
        poll_interval: float = 0.5,
        full_reload_interval: float = 60.0,
    ) -> None:
        self._load = load or load_config_closing_connection
        self._read_version = read_version or _read_config_version
        self.poll_interval = poll_interval
        self.full_reload_interval = full_reload_interval
        self.current = EngineConfig()
        self.listeners: list[Callable[[EngineConfig], None]] = []

    async def start(self) -> None:
        await self.reload()

    async def reload(self) -> None:
        config = await asyncio.to_thread(self._load)
        self.current = config
        for listener in self.listeners:
            listener(config)
        log.info("configuration v%s: %d trunks", config.version, len(config.trunks))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                version = await asyncio.to_thread(self._read_version)
                # The periodic full reload covers a lost bump (e.g. a cache flush).
                if version != self.current.version or loop.time() - last_full > self.full_reload_interval:
                    await self.reload()
                    last_full = loop.time()
            except Exception:  # noqa: BLE001 — keep serving the last good snapshot
                log.exception("configuration reload failed; keeping version %s", self.current.version)


def _read_config_version() -> int:
    from trunks.config_version import config_version

    return config_version()


def load_config_closing_connection() -> EngineConfig:
    """`load_config_from_db` for a worker thread, closing that thread's connection afterwards:
    reloads are rare, and a connection left open in a pool thread would outlive a database restart."""
    from django.db import connections

    try:
        return load_config_from_db()
    finally:
        connections.close_all()
