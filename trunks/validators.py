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


def private_ranges_in(values: list[str]) -> list[str]:
    """The entries that are private or local: a PBX behind NAT is seen from its public address."""
    return [v for v in values if ipaddress.ip_network(v, strict=False).is_private]


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
