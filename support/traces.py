"""SIP traces: storing what the engine reports, redacting credentials, and writing .pcap files.

Redaction (docs/support.md): the digest `response`, `nonce`, `cnonce` and `opaque` values of
Authorization / Proxy-Authorization / WWW-Authenticate headers are replaced in every view and
bundle; for support staff the trunk's auth username is replaced too. Only the workspace Owner's
raw .pcap download keeps the bytes as they were on the wire.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from telephony import events as ev
from trunks.models import SipTrunk

from .models import SipTrace

REDACTED = "[redacted]"
USERNAME_PLACEHOLDER = "[auth-username]"

_AUTH_HEADER = re.compile(
    r"^((?:Proxy-)?Authorization|(?:WWW|Proxy)-Authenticate)([ \t]*:)(.*)$", re.IGNORECASE | re.MULTILINE
)
_SECRET_PARAM = re.compile(r'\b(response|nonce|cnonce|opaque)(\s*=\s*)("[^"]*"|[^,\s]+)', re.IGNORECASE)
_USERNAME_PARAM = re.compile(r'\b(username)(\s*=\s*)("[^"]*"|[^,\s]+)', re.IGNORECASE)


def trace_records_store(*, events: Iterable[ev.SipTraceRecorded]) -> int:
    """Stores each trace once (by its event id: a retried task does not duplicate). Returns rows written."""
    events = list(events)
    trunk_ids = {e.trunk_id for e in events if e.trunk_id is not None}
    tenant_of = dict(SipTrunk.objects.filter(pk__in=trunk_ids).values_list("pk", "tenant_id"))
    rows = [
        SipTrace(
            # A trunk deleted since: keep the trace as platform-level rather than lose it.
            trunk_id=e.trunk_id if e.trunk_id in tenant_of else None,
            tenant_id=tenant_of.get(e.trunk_id),
            kind=e.kind[:16],
            call_id=e.call_id[:256],
            outcome=e.outcome[:128],
            username=e.username[:128],
            at=datetime.fromtimestamp(e.at, tz=UTC),
            messages=[dict(m) for m in e.messages],
            event_id=e.event_id,
        )
        for e in events
    ]
    created = SipTrace.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def traces_prune(*, now: datetime | None = None) -> int:
    """Deletes traces older than SIP_TRACE_RETENTION_DAYS (they hold addresses and numbers)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SIP_TRACE_RETENTION_DAYS)
    deleted, _ = SipTrace.objects.filter(at__lt=cutoff).delete()
    return deleted


def trace_list(*, trunk: SipTrunk) -> QuerySet[SipTrace]:
    return SipTrace.objects.filter(tenant_id=trunk.tenant_id, trunk=trunk).order_by("-at", "-pk")


# --- redaction -------------------------------------------------------------------------------


def redact_sip_text(text: str, *, hide_username: str = "") -> str:
    """The message with digest secrets blanked; with `hide_username`, that username replaced everywhere."""

    def _auth_line(match: re.Match) -> str:
        value = _SECRET_PARAM.sub(lambda m: f'{m.group(1)}{m.group(2)}"{REDACTED}"', match.group(3))
        if hide_username:
            value = _USERNAME_PARAM.sub(lambda m: f'{m.group(1)}{m.group(2)}"{USERNAME_PLACEHOLDER}"', value)
        return f"{match.group(1)}{match.group(2)}{value}"

    text = _AUTH_HEADER.sub(_auth_line, text)
    # From, To and Contact carry it as the URI user part; 3 characters or fewer could hit anything.
    if hide_username and len(hide_username) > 3:
        text = re.sub(re.escape(hide_username), USERNAME_PLACEHOLDER, text, flags=re.IGNORECASE)
    return text


_LONG_NUMBER = re.compile(r"(?<![\w.])(\+?)(\d{3,})(\d{4})(?![\w.])")


def mask_numbers(text: str) -> str:
    """Phone numbers (7+ digits) keep only their last 4 digits: '+27215550199' → '+*******0199'."""
    return _LONG_NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


@dataclass(frozen=True)
class Redaction:
    """What a reader of a trace may see. Everyone loses the digest values; see the module docstring."""

    digest: bool = True
    username: str = ""  # the trunk's auth username, hidden from support staff
    numbers: bool = False  # bundles leave the platform: personal numbers masked

    def apply(self, text: str) -> str:
        if self.digest:
            text = redact_sip_text(text, hide_username=self.username)
        elif self.username:
            text = re.sub(re.escape(self.username), USERNAME_PLACEHOLDER, text, flags=re.IGNORECASE)
        return mask_numbers(text) if self.numbers else text


RAW = Redaction(digest=False)


def redaction_for(*, trace: SipTrace, support: bool, owner: bool = False, raw: bool = False) -> Redaction:
    if raw and owner and not support:
        return RAW
    username = ""
    if support and trace.trunk is not None:
        username = trace.trunk.auth_username or trace.username
    return Redaction(username=username)


def trace_messages(*, trace: SipTrace, redaction: Redaction) -> list[dict]:
    return [{**m, "text": redaction.apply(str(m.get("text", "")))} for m in trace.messages]


# --- ladder ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LadderRow:
    at: datetime
    offset_ms: float
    from_pbx: bool  # arrow direction: PBX → SmartAlex (in) or back (out)
    label: str  # "REGISTER" or "401 Unauthorized"
    transport: str
    src: str
    dst: str
    text: str


def first_line(text: str) -> str:
    line = text.split("\r\n", 1)[0].split("\n", 1)[0]
    if line.startswith("SIP/2.0 "):
        return line[len("SIP/2.0 ") :]
    return line.split(" ", 1)[0]


def trace_ladder(*, messages: list[dict]) -> list[LadderRow]:
    if not messages:
        return []
    start = float(messages[0].get("at", 0))
    return [
        LadderRow(
            at=datetime.fromtimestamp(float(m.get("at", 0)), tz=UTC),
            offset_ms=(float(m.get("at", 0)) - start) * 1000,
            from_pbx=m.get("direction") == "in",
            label=first_line(str(m.get("text", ""))),
            transport=str(m.get("transport", "")).upper(),
            src=str(m.get("src", "")),
            dst=str(m.get("dst", "")),
            text=str(m.get("text", "")),
        )
        for m in messages
    ]


def trace_as_text(*, trace: SipTrace, messages: list[dict]) -> str:
    """The classic text SIP log: a header line per message, then the message."""
    parts = [f"# {trace.kind} {trace.call_id} — {trace.outcome}\n"]
    for m in messages:
        when = datetime.fromtimestamp(float(m.get("at", 0)), tz=UTC).isoformat(timespec="milliseconds")
        arrow = "→" if m.get("direction") == "in" else "←"
        parts.append(
            f"\n{when} {str(m.get('transport', '')).upper()} {m.get('src')} {arrow} {m.get('dst')}\n"
        )
        parts.append(str(m.get("text", "")).replace("\r\n", "\n"))
    return "".join(parts)


# --- pcap --------------------------------------------------------------------------------------
# Classic libpcap, LINKTYPE_RAW (101): each record is an IPv4 or IPv6 packet we build here. SIP
# over TCP/TLS is written as UDP datagrams: the content is what matters to the reader, and
# Wireshark dissects SIP on UDP 5060 without a TCP stream to reassemble.

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_RAW = 101
SIP_PORT = 5060


def _address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = ipaddress.ip_address("0.0.0.0")
    return ip, int(port) if port.isdigit() else SIP_PORT


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_packet(src: str, dst: str, payload: bytes) -> bytes:
    src_ip, src_port = _address(src)
    dst_ip, dst_port = _address(dst)
    if src_ip.version != dst_ip.version:  # one unknown side: keep the family of the other
        dst_ip = ipaddress.ip_address("::") if src_ip.version == 6 else ipaddress.ip_address("0.0.0.0")
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    if src_ip.version == 4:
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src_ip.packed, dst_ip.packed
        )
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + udp
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src_ip.packed, dst_ip.packed) + udp


def pcap_bytes(*, messages: list[dict]) -> bytes:
    out = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_RAW)]
    for m in messages:
        payload = str(m.get("text", "")).encode("latin-1", "replace")
        packet = _udp_packet(str(m.get("src", "")), str(m.get("dst", "")), payload)
        at = float(m.get("at", 0))
        seconds, micros = int(at), int(round((at - int(at)) * 1_000_000)) % 1_000_000
        out.append(struct.pack("<IIII", seconds, micros, len(packet), len(packet)) + packet)
    return b"".join(out)
