"""Probes the worker runs against a PBX: OPTIONS now, and a test call that must ring within 3 s.

The engine has no RPC, so the worker speaks SIP itself, from its own UDP socket, to the address
the PBX last registered from (TrunkStatus.source). Messages are parsed by our SIP core. A PBX
behind NAT may not accept a packet from the worker's address; the result then says "no answer",
which is also what support needs to know.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from telephony.sip.errors import SipError
from telephony.sip.message import Response
from telephony.sip.parser import parse_message

RING_STATUSES = frozenset({180, 183, 200})


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status: int | None  # the PBX's answer (first ringing/final status), None if none
    reason: str
    latency_ms: float | None

    def as_detail(self) -> dict:
        return {"ok": self.ok, "status": self.status, "reason": self.reason, "latency_ms": self.latency_ms}


def _address(source: str) -> tuple[str, int]:
    host, _, port = source.rpartition(":")
    return host.strip("[]"), int(port or 5060)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            message = parse_message(data)
        except (SipError, ValueError):
            return  # keep-alives and garbage are not answers
        if isinstance(message, Response):
            self.responses.put_nowait(message)


def _request(
    method: str,
    uri: str,
    *,
    local: tuple[str, int],
    call_id: str,
    cseq: int,
    branch: str,
    from_tag: str,
    to: str,
    extra: str = "",
) -> bytes:
    host, port = local
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport\r\n"
        f"From: <sip:probe@{host}>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"User-Agent: SmartAlex Voice probe\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


async def _next(client: _Client, deadline: float, call_id: str) -> Response | None:
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            response = await asyncio.wait_for(client.responses.get(), remaining)
        except TimeoutError:
            return None
        if response.call_id == call_id:
            return response
    return None


async def _open(target: tuple[str, int]) -> tuple[_Client, asyncio.DatagramTransport, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=target)
    return client, transport, transport.get_extra_info("sockname")[:2]


async def options_probe(*, source: str, pbx_domain: str, timeout: float = 2.0) -> ProbeResult:
    target = _address(source)
    client, transport, local = await _open(target)
    call_id = f"probe-{secrets.token_hex(8)}"
    started = time.monotonic()
    try:
        transport.sendto(
            _request(
                "OPTIONS",
                f"sip:{pbx_domain}",
                local=local,
                call_id=call_id,
                cseq=1,
                branch=f"z9hG4bK{secrets.token_hex(6)}",
                from_tag=secrets.token_hex(4),
                to=f"<sip:{pbx_domain}>",
            )
        )
        response = await _next(client, started + timeout, call_id)
    finally:
        transport.close()
    if response is None:
        return ProbeResult(False, None, "no answer to OPTIONS", None)
    latency = round((time.monotonic() - started) * 1000, 1)
    return ProbeResult(response.status < 300, response.status, response.reason, latency)


async def call_probe(
    *, source: str, pbx_domain: str, extension: str, ring_within: float = 3.0
) -> ProbeResult:
    """INVITEs sip:EXT@pbx_domain; ringing (180/183) or an answer within `ring_within` passes.
    The call is then cancelled (or, if answered, acknowledged and hung up): nobody has to talk."""
    target = _address(source)
    client, transport, local = await _open(target)
    call_id, from_tag = f"probe-{secrets.token_hex(8)}", secrets.token_hex(4)
    uri, to = f"sip:{extension}@{pbx_domain}", f"<sip:{extension}@{pbx_domain}>"
    branch = f"z9hG4bK{secrets.token_hex(6)}"
    contact = f"Contact: <sip:probe@{local[0]}:{local[1]}>\r\n"
    started = time.monotonic()
    first: Response | None = None
    try:
        transport.sendto(
            _request(
                "INVITE",
                uri,
                local=local,
                call_id=call_id,
                cseq=1,
                branch=branch,
                from_tag=from_tag,
                to=to,
                extra=contact,
            )
        )
        final: Response | None = None
        while (response := await _next(client, started + ring_within, call_id)) is not None:
            if response.status in RING_STATUSES and first is None:
                first = response
            if response.status >= 200:
                final = response
                break
            if first is not None:
                break
        latency = round((time.monotonic() - started) * 1000, 1) if first else None
        if final is not None and final.status == 200:
            to_tagged = final.headers.get("To") or to
            transport.sendto(
                _request(
                    "ACK",
                    uri,
                    local=local,
                    call_id=call_id,
                    cseq=1,
                    branch=f"z9hG4bK{secrets.token_hex(6)}",
                    from_tag=from_tag,
                    to=to_tagged,
                )
            )
            transport.sendto(
                _request(
                    "BYE",
                    uri,
                    local=local,
                    call_id=call_id,
                    cseq=2,
                    branch=f"z9hG4bK{secrets.token_hex(6)}",
                    from_tag=from_tag,
                    to=to_tagged,
                )
            )
            await _next(client, time.monotonic() + 1, call_id)
        elif final is None:
            transport.sendto(
                _request(
                    "CANCEL",
                    uri,
                    local=local,
                    call_id=call_id,
                    cseq=1,
                    branch=branch,
                    from_tag=from_tag,
                    to=to,
                )
            )
            await _next(client, time.monotonic() + 1, call_id)
    finally:
        transport.close()
    if first is not None:
        return ProbeResult(True, first.status, f"rang: {first.status} {first.reason}", latency)
    if final is not None:
        return ProbeResult(False, final.status, f"rejected: {final.status} {final.reason}", None)
    return ProbeResult(False, None, f"did not ring within {ring_within:.0f} s", None)
