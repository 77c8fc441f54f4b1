"""What the engine reports. Frozen, JSON-serialisable, no ORM objects (DESIGN.md: the engine
never writes portal tables; the worker turns these into rows by calling services)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class EngineEvent:
    registry: ClassVar[dict[str, type[EngineEvent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EngineEvent.registry[cls.__name__] = cls


@dataclass(frozen=True)
class TrunkRegistered(EngineEvent):
    trunk_id: int
    contact: str
    source: str
    transport: str
    user_agent: str
    expires: int
    at: float
    # Causes from the troubleshooting guide noticed in this REGISTER, in words.
    warnings: tuple[str, ...] = ()
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class TrunkRefreshed(EngineEvent):
    """A re-REGISTER of a live binding. Coalesced per trunk by the engine, so not one per packet."""

    trunk_id: int
    source: str
    expires: int
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class TrunkUnregistered(EngineEvent):
    trunk_id: int
    source: str
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class TrunkExpired(EngineEvent):
    trunk_id: int
    contact: str
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class RegisterAuthFailed(EngineEvent):
    """`trunk_id` is None when the username matches no trunk (the PBX is told nothing different)."""

    trunk_id: int | None
    username: str
    reason: str  # unknown_user | wrong_password | wrong_realm | stale_nonce | bad_nonce | replay | ...
    source: str
    transport: str
    user_agent: str
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class TrunkReachability(EngineEvent):
    trunk_id: int
    reachable: bool
    latency_ms: float | None
    at: float
    event_id: str = field(default_factory=_new_id)


def encode(event: EngineEvent) -> dict[str, Any]:
    data = asdict(event)
    data["type"] = type(event).__name__
    return data


def decode(data: dict[str, Any]) -> EngineEvent:
    data = dict(data)
    cls = EngineEvent.registry[data.pop("type")]
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    for name in ("warnings", "messages"):
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)


@dataclass(frozen=True)
class SipTraceRecorded(EngineEvent):
    """The SIP messages of one REGISTER exchange or one call, as seen on the wire.

    `messages` are dicts: at (epoch s), direction ("in"/"out"), transport, src, dst ("ip:port"),
    text (the message, latin-1 decoded so every byte survives). `trunk_id` may be None for a
    REGISTER whose username matches no trunk; `username` is then what it claimed.
    """

    kind: str  # "register" | "call"
    call_id: str
    trunk_id: int | None
    username: str
    outcome: str  # e.g. "registered", "403 Forbidden", "answered", "transferred"
    messages: tuple[dict, ...]
    at: float
    event_id: str = field(default_factory=_new_id)
