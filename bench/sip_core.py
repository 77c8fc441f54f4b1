"""How many messages per second the sans-I/O SIP core handles on one core.

For a typical REGISTER and a typical INVITE with SDP it times, per message, what the engine does
before any application logic: parse the datagram, stamp received/rport, read the typed views
the registrar or call handler reads, run the endpoint checks, build the response and serialise
it. Parsing alone is timed too. No sockets, no event loop: this is the ceiling the transport
and application layers start from.

    .venv/bin/python bench/sip_core.py                    # 3 rounds of 20 000 per case
    .venv/bin/python bench/sip_core.py --iterations 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telephony.sip.message import Request, make_response, stamp_received  # noqa: E402
from telephony.sip.parser import parse_message  # noqa: E402
from telephony.sip.uas_checks import check_request  # noqa: E402

REGISTER = (
    b"REGISTER sip:sip.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-524287-1---f1f2d35d8b24c26f;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:1001@198.51.100.20:5060;rinstance=31f0cace90969e0f;transport=udp>;expires=3600\r\n"
    b'To: "1001"<sip:1001@sip.example.com>\r\n'
    b'From: "1001"<sip:1001@sip.example.com>;tag=ffff3e75\r\n'
    b"Call-ID: 80103ODBiMmM2MmZjMjE4N2M2NTUyMTI0Yjk3ZWUxZTIwYmM\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Expires: 3600\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n"
    b'Authorization: Digest username="1001",realm="sip.example.com",nonce="578cc479650bc017195785bd3e2a2258",'
    b'uri="sip:sip.example.com",response="0b6a1d0ea0b9b4c1e0c9a0e4c4b8e1c2",algorithm=MD5\r\n'
    b"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
    b"Content-Length: 0\r\n\r\n"
)

SDP = (
    b"v=0\r\n"
    b"o=- 20518 0 IN IP4 203.0.113.5\r\n"
    b"s=SDP data\r\n"
    b"c=IN IP4 203.0.113.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 11424 RTP/AVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:+14155550100@sip.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK3f0a6c1e;rport\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Front Desk" <sip:+14155550123@pbx.example.net>;tag=as6b2f1c0d\r\n'
    b"To: <sip:+14155550100@sip.example.com>\r\n"
    b"Contact: <sip:+14155550123@203.0.113.5:5060>\r\n"
    b"Call-ID: 4f1c2a7d3b6e5f80@203.0.113.5\r\n"
    b"CSeq: 102 INVITE\r\n"
    b"User-Agent: Asterisk PBX 20.5.0\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE\r\n"
    b"Supported: replaces, timer\r\n"
    b"Session-Expires: 1800\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

SERVER = {
    "supported_methods": frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "REFER", "NOTIFY"}
    ),
    "supported_extensions": frozenset({"replaces", "timer"}),
    "accepted_content_types": frozenset({"application/sdp"}),
}


def handle_register(data: bytes) -> bytes:
    request = parse_message(data)
    assert isinstance(request, Request)
    request = stamp_received(request, "198.51.100.20", 5060)
    rejection = check_request(request, **SERVER)
    assert rejection is None
    # What the registrar reads: the AOR, the bindings and their lifetime, the credentials.
    aor = request.to.uri
    bindings = [(contact.uri, contact.expires) for contact in request.contacts]
    expires, credentials = request.expires, request.auth("Authorization")
    assert aor and bindings and expires and credentials
    headers = [("Contact", f"<{uri}>;expires={lifetime}") for uri, lifetime in bindings]
    return make_response(request, 200, to_tag="bf0c71a5", headers=headers).to_bytes()


def handle_invite(data: bytes) -> bytes:
    request = parse_message(data)
    assert isinstance(request, Request)
    request = stamp_received(request, "203.0.113.5", 5060)
    rejection = check_request(request, **SERVER)
    assert rejection is None
    assert request.contacts and request.content_type and request.body
    trying = make_response(request, 100).to_bytes()
    answer = make_response(
        request,
        200,
        to_tag="9a8b7c6d",
        headers=[("Contact", "<sip:agent@192.0.2.10:5060>"), ("Content-Type", "application/sdp")],
        body=SDP,
    )
    return trying + answer.to_bytes()


def rate(work: Callable[[bytes], object], data: bytes, iterations: int, rounds: int) -> tuple[float, float]:
    """(messages per CPU-second, messages per wall-second), each the best of `rounds` rounds.

    CPU time is what one core can do; wall time also counts whatever else the machine runs.
    """
    for _ in range(min(1000, iterations)):  # warm caches and the allocator
        work(data)
    best_cpu = best_wall = float("inf")
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(iterations):
            work(data)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return iterations / best_cpu, iterations / best_wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, best of {arguments.rounds} rounds of {arguments.iterations}, one core"
    )
    print(f"{'':<42} {'msg/s (CPU)':>12} {'µs/msg':>8} {'msg/s (wall)':>13}")
    for name, work, data in (
        ("REGISTER parse only", parse_message, REGISTER),
        ("REGISTER parse + checks + 200 OK", handle_register, REGISTER),
        ("INVITE+SDP parse only", parse_message, INVITE),
        ("INVITE+SDP parse + checks + 100 + 200 OK", handle_invite, INVITE),
    ):
        per_cpu_second, per_wall_second = rate(work, data, arguments.iterations, arguments.rounds)
        print(f"{name:<42} {per_cpu_second:>12,.0f} {1e6 / per_cpu_second:>8.1f} {per_wall_second:>13,.0f}")


if __name__ == "__main__":
    main()
