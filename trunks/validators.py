"""Parsing and validation of what customers type: PBX domains, IP lists, phone numbers."""

from __future__ import annotations

import ipaddress
import re

from smartalex.errors import ApplicationError

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def validate_pbx_domain(value: str) -> str:
    """A hostname or IP address (optionally with :port), as the PBX presents itself."""
    value = (value or "").strip().lower().rstrip(".")
    if not value:
        raise ApplicationError(
            "PBX SIP Domain is required: transfers are addressed to it.", extra={"field": "pbx_domain"}
        )
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ApplicationError(
            "The port after the PBX SIP Domain must be 1–65535.", extra={"field": "pbx_domain"}
        )
    try:
        ipaddress.ip_address(host)
        return value
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ApplicationError(
            f"“{value}” is not a valid hostname or IP address.", extra={"field": "pbx_domain"}
        )
    return value


def validate_allowed_ips(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """Addresses or CIDR blocks, one per item (a string may separate them by commas or lines)."""
    if isinstance(values, str):
        values = re.split(r"[\s,;]+", values)
    result: list[str] = []
    for raw in values:
        raw = raw.strip()
        if not raw:
            continue
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError as exc:
            raise ApplicationError(
                f"“{raw}” is not an IP address or CIDR block.", extra={"field": "allowed_ips"}
            ) from exc
        if network.prefixlen < (16 if network.version == 4 else 32):
            raise ApplicationError(
                f"“{raw}” is too wide to be a PBX's address.", extra={"field": "allowed_ips"}
            )
        text = str(network.network_address) if network.num_addresses == 1 else str(network)
        if text not in result:
            result.append(text)
    return result


# Addresses that never reach SmartAlex as a packet's source: private (RFC 1918, unique local),
# carrier-grade NAT, link-local and loopback. (ipaddress's is_private also counts the public
# documentation ranges, which is not what a NAT check wants.)
NAT_RANGES = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


def is_nat_address(value: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address only reachable inside a private network (a PBX behind NAT has one)."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return any(network.version == r.version and network.subnet_of(r) for r in NAT_RANGES)


def private_ranges_in(values: list[str]) -> list[str]:
    """The entries that are private or local: a PBX behind NAT is seen from its public address."""
    return [v for v in values if is_nat_address(v)]


def normalise_e164(value: str) -> str:
    """'+1 (415) 555-0100' → '+14155550100'. A number must carry its country code."""
    raw = (value or "").strip()
    digits = re.sub(r"[\s().\-/]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+[1-9]\d{6,14}", digits):
        raise ApplicationError(
            f"“{raw}” is not an E.164 number: write it as + country code and number, e.g. +14155550100.",
            extra={"field": "number"},
        )
    return digits


SUPPORTED_CODECS = ("PCMU", "PCMA", "G722")
LICENSED_CODECS = ("G729",)
_CODEC_ALIASES = {"G.722": "G722", "G.729": "G729", "ULAW": "PCMU", "ALAW": "PCMA"}


def validate_codecs(values: list[str] | tuple[str, ...]) -> list[str]:
    """An ordered list of codecs; G.711 must stay in it because every PBX can fall back to it."""
    result: list[str] = []
    for raw in values:
        name = str(raw).strip().upper()
        name = _CODEC_ALIASES.get(name, name)
        if name in LICENSED_CODECS:
            raise ApplicationError(
                "G.729 is a licensed codec: contact support to enable it on the trunk.",
                extra={"field": "codecs"},
            )
        if name not in SUPPORTED_CODECS:
            raise ApplicationError(
                f"“{raw}” is not a supported codec: choose from PCMU, PCMA and G722.",
                extra={"field": "codecs"},
            )
        if name not in result:
            result.append(name)
    if not {"PCMU", "PCMA"} & set(result):
        raise ApplicationError(
            "Keep G.711 (PCMU or PCMA) in the codec list: every PBX supports it.", extra={"field": "codecs"}
        )
    return result


_SIP_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
MIN_CUSTOM_PASSWORD_LENGTH = 12


def validate_sip_username(value: str) -> str:
    value = (value or "").strip()
    if not _SIP_USERNAME.match(value):
        raise ApplicationError(
            "A SIP username is 3–64 letters, digits, dots, dashes or underscores. "
            "Leave it blank to have one generated.",
            extra={"field": "auth_username"},
        )
    return value


def validate_sip_password(value: str) -> str:
    """A chosen SIP password must resist guessing: SIP servers on the internet are scanned all day."""
    if len(value) < MIN_CUSTOM_PASSWORD_LENGTH or not value.isprintable() or value != value.strip():
        raise ApplicationError(
            f"A SIP password needs at least {MIN_CUSTOM_PASSWORD_LENGTH} characters, without spaces at "
            "either end. Leave it blank to have a 24-character one generated (recommended).",
            extra={"field": "auth_password"},
        )
    return value
