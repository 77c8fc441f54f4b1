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


# --- calls (telephony/calls) ------------------------------------------------------------------
# Every call event carries `call_ref` (the engine's id for the call, unique across engines) and
# the workspace and trunk, so the worker can create the record from whichever event it sees
# first (batches may be applied out of order when several workers run). Times are epoch seconds.


@dataclass(frozen=True)
class CallStarted(EngineEvent):
    """An INVITE for a DID of `trunk_id` was accepted for routing (or rejected right after)."""

    call_ref: str
    tenant_id: int
    trunk_id: int
    sip_call_id: str
    did: str
    caller: str  # the caller's number or user, from P-Asserted-Identity or From
    caller_name: str
    agent_id: int | None
    at: float  # the INVITE arrived
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class CallAnswered(EngineEvent):
    call_ref: str
    tenant_id: int
    trunk_id: int
    codec: str  # PCMU | PCMA | G722
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class CallTransferred(EngineEvent):
    """The end of one transfer attempt: `status` is the PBX's final answer (the REFER's
    response, the last NOTIFY's sipfrag, or the bridged INVITE's final response); 408 when the
    PBX never reported. `method` is "refer" or "bridge"."""

    call_ref: str
    tenant_id: int
    trunk_id: int
    target: str  # the extension
    method: str
    accepted: bool
    status: int | None
    reason: str
    requested_at: float  # the agent asked for the transfer
    sent_at: float | None  # REFER (or bridged INVITE) sent
    ringing_at: float | None  # the PBX reported 180/183 for the target
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class CallForUnknownDid(EngineEvent):
    """An INVITE from an identified trunk's PBX for a number that is not one of that trunk's
    DIDs, answered 404: no call record (the number may belong to nobody), but the trunk's
    health says which number its PBX sends. `number` is E.164 when the Request-URI or To held
    one, else the Request-URI's user part as sent. The handler sends at most one a minute per
    trunk and number, so a PBX retrying in a loop does not flood the trunk's history."""

    trunk_id: int
    number: str
    source: str
    at: float
    event_id: str = field(default_factory=_new_id)


@dataclass(frozen=True)
class CallEnded(EngineEvent):
    """`outcome`: see calls.models.CallOutcome. `sip_status` is our final answer to the INVITE
    when the call was rejected (404, 480, 503…) or 487 when the caller cancelled."""

    call_ref: str
    tenant_id: int
    trunk_id: int
    outcome: str
    sip_status: int | None
    reason: str
    dtmf: str  # every digit the caller keyed, in order
    understanding: dict | None  # the receptionist's Understanding.as_dict()
    hangup_reason: str  # why we hung up, if we did (silence_timeout, max_call_duration, ...)
    at: float
    event_id: str = field(default_factory=_new_id)


# The four ways a transfer attempt ends, for metrics and the pages (engine and portal alike).
TRANSFER_OUTCOMES = ("accepted", "refused", "failed", "timeout")


def transfer_outcome(*, accepted: bool, status: int | None) -> str:
    """accepted: the PBX took the caller; refused: the PBX or the extension said no (486 busy,
    603 declined, 404 no such extension…); timeout: no final word from the PBX (408, or no
    NOTIFY); failed: anything else (a 5xx, no media port for a bridge)."""
    if accepted:
        return "accepted"
    if status is None or status == 408:
        return "timeout"
    if 400 <= status < 500 or status >= 600:
        return "refused"
    return "failed"
