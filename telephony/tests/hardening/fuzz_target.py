"""One fuzz target over the SIP core: parser (datagram and stream), typed header views,
the transaction layer (with its timers) and SDP (parse and answer).

Bytes go in; only the typed errors of the SIP core may come out (PeerError and its subclasses:
the peer's fault, answered 4xx or dropped). Anything else is a bug: `Target.unexpected` counts
them and keeps the first inputs that raised. Shared by `bench/fuzz_sip.py` (atheris, a million
inputs) and the quick version in the suite (test_fuzz_quick.py).
"""

from __future__ import annotations

import contextlib
import random
import traceback
from pathlib import Path

from telephony.sip.errors import PeerError
from telephony.sip.message import Request, Response, make_response, stamp_received
from telephony.sip.parser import StreamFramer, parse_message
from telephony.sip.sdp import build_answer, parse_sdp
from telephony.sip.transaction import RequestReceived
from telephony.sip.transaction_layer import TransactionLayer
from telephony.sip.uas_checks import check_request

TORTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
SDP_SEED = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 9 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\na=sendrecv\r\n"
)
INVITE_SEED = (
    b"INVITE sip:+27215550100@sip.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfz1\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:caller@192.0.2.1>;tag=a1\r\nTo: <sip:+27215550100@sip.example>\r\n"
    b"Call-ID: fz1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@192.0.2.1>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: "
    + str(len(SDP_SEED)).encode()
    + b"\r\n\r\n"
    + SDP_SEED
)
SERVER = {
    "supported_methods": frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "REFER", "NOTIFY"}
    ),
    "supported_extensions": frozenset({"replaces", "norefersub", "path", "outbound", "timer"}),
    "accepted_content_types": frozenset({"application/sdp", "message/sipfrag"}),
}
VIEWS = ("contacts", "expires", "content_type", "accept", "require", "proxy_require", "supported",
         "unsupported", "allow", "routes", "record_routes")  # fmt: skip


def seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(TORTURE_DIR.glob("*.dat"))] + [INVITE_SEED, SDP_SEED]


class Target:
    def __init__(self) -> None:
        self.layer = TransactionLayer()
        self.now = 1_000_000.0
        self.inputs = 0
        self.unexpected = 0
        self.reached = {"parsed": 0, "transactions": 0, "sdp": 0}  # how deep the inputs got
        self.samples: list[tuple[bytes, str]] = []

    def __call__(self, data: bytes) -> None:
        self.inputs += 1
        try:
            self._run(data)
        except PeerError:
            pass
        except Exception:  # noqa: BLE001 — the point: count what should never happen
            self.unexpected += 1
            if len(self.samples) < 20:
                self.samples.append((data, traceback.format_exc(limit=6)))

    def _run(self, data: bytes) -> None:
        self.now += 0.5  # timers fire as inputs go by: the transaction table must stay bounded
        for action in self.layer.handle_timeout(self.now):
            del action
        message = None
        with contextlib.suppress(PeerError):
            message = parse_message(data)
        if message is not None:
            self.reached["parsed"] += 1
            self._exercise(message)
        framer = StreamFramer()
        cut = len(data) // 2
        with contextlib.suppress(PeerError):
            for part in (data[:cut], data[cut:], data):
                for item in framer.feed(part):
                    if isinstance(item, Request | Response):
                        self._views(item)
        with contextlib.suppress(PeerError):
            self._sdp(data)

    def _views(self, message: Request | Response) -> None:
        for view in VIEWS:
            with contextlib.suppress(PeerError):
                getattr(message, view)
        for name in ("Authorization", "WWW-Authenticate", "Proxy-Authorization"):
            with contextlib.suppress(PeerError):
                message.auth(name)

    def _exercise(self, message: Request | Response) -> None:
        self._views(message)
        message.to_bytes()
        source = ("192.0.2.7", 5060)
        for action in self.layer.receive(message, source, self.now):
            if isinstance(action, RequestReceived):
                self.reached["transactions"] += 1
                request = stamp_received(action.request, "192.0.2.7", 5060)
                rejection = check_request(request, **SERVER, to_tag="t1")
                response = rejection or make_response(request, 200, to_tag="t1")
                self.layer.respond(action.transaction, response, self.now)
        if message.body:
            with contextlib.suppress(PeerError):
                self._sdp(message.body)

    def _sdp(self, body: bytes) -> None:
        offer = parse_sdp(body)
        self.reached["sdp"] += 1
        build_answer(offer, local_address="192.0.2.10", local_port=20000, session_id=1, session_version=1)


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    """Seeded mutations of real messages (flips, cuts, grammar octets, line duplication)."""
    data = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(data))
        kind = rng.randrange(6)
        if kind == 0 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif kind == 1:
            del data[position:]
        elif kind == 2:
            data[position:position] = rng.choice(
                [
                    b"\r\n",
                    b"\r\n ",
                    b":",
                    b";",
                    b",",
                    b'"',
                    b"<",
                    b">",
                    b"%",
                    b"\x00",
                    b"\xff",
                    b"=",
                    b"9" * 40,
                ]
            )
        elif kind == 3:
            data[position:position] = rng.randbytes(rng.randint(1, 8))
        elif kind == 4:
            del data[position : position + rng.randint(1, 16)]
        else:
            lines = bytes(data).split(b"\r\n")
            index = rng.randrange(len(lines))
            lines.insert(index, lines[index])
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
