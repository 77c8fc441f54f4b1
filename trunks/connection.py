"""The connection details a customer copies into their PBX: the guide's table, in the guide's words."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from .models import SipTrunk, Transport
from .vendors import vendor_profile, vendor_steps

CODEC_LABELS = {"PCMU": "G.711 u-law (PCMU)", "PCMA": "G.711 A-law (PCMA)", "G722": "G.722"}
# Asterisk and FreePBX name codecs their own way.
ASTERISK_CODECS = {"PCMU": "ulaw", "PCMA": "alaw", "G722": "g722"}
PASSWORD_PLACEHOLDER = "<Auth Password>"


def sip_port(transport: str) -> int:
    return settings.SIP_TLS_PORT if transport == Transport.TLS else settings.SIP_PORT


def codec_priority_text(codecs: list[str] | tuple[str, ...]) -> str:
    """['PCMU', 'PCMA', 'G722'] → 'G.711 u-law (PCMU), then G.711 A-law (PCMA), then G.722'."""
    return ", then ".join(CODEC_LABELS.get(c, c) for c in codecs)


@dataclass(frozen=True)
class ConnectionRow:
    key: str  # used for element ids, so copy buttons can point at the value
    setting: str
    value: str
    note: str = ""
    copyable: bool = True
    copy_text: str = ""  # what the copy button copies, when it is not the value shown

    @property
    def copies(self) -> str:
        return self.copy_text or self.value


@dataclass(frozen=True)
class ConnectionDetails:
    registrar: str
    outbound_proxy: str
    port: int
    transport: str
    auth_username: str | None
    realm: str
    codecs: tuple[str, ...]
    dtmf: str
    max_concurrent_calls: int
    allowed_ips: tuple[str, ...]
    auth_password: str | None = field(default=None, repr=False)  # only right after create/regenerate

    @property
    def codec_priority(self) -> str:
        return codec_priority_text(self.codecs)

    @property
    def uses_credentials(self) -> bool:
        return self.auth_username is not None

    def rows(self) -> list[ConnectionRow]:
        rows = [
            ConnectionRow("registrar", "Registrar / Server", self.registrar),
            ConnectionRow("outbound-proxy", "Outbound Proxy", self.outbound_proxy),
            ConnectionRow("port", "Port", str(self.port), note="5060 for UDP/TCP, 5061 for TLS"),
            ConnectionRow("transport", "Transport", self.transport.upper()),
        ]
        if self.uses_credentials:
            rows.append(ConnectionRow("auth-username", "Auth Username", self.auth_username or ""))
            if self.auth_password:
                rows.append(
                    ConnectionRow(
                        "auth-password",
                        "Auth Password",
                        self.auth_password,
                        note="Shown once: copy it now. Lost it? Regenerate the password.",
                    )
                )
            else:
                rows.append(
                    ConnectionRow(
                        "auth-password",
                        "Auth Password",
                        "Hidden: shown only once, when it was created",
                        note="Use “Regenerate password” to get a new one.",
                        copyable=False,
                    )
                )
            rows.append(
                ConnectionRow(
                    "realm",
                    "Auth realm",
                    "Leave blank",
                    note=f"unless your PBX requires one: then use {self.realm} (the copy button copies it)",
                    copy_text=self.realm,
                )
            )
        if self.allowed_ips:
            rows.append(
                ConnectionRow(
                    "allowed-ips",
                    "IP Whitelist",
                    ", ".join(self.allowed_ips),
                    note="SmartAlex accepts your PBX from these addresses",
                )
            )
        rows += [
            ConnectionRow("codecs", "Codec priority", self.codec_priority),
            ConnectionRow("dtmf", "DTMF", self.dtmf),
            ConnectionRow(
                "max-calls",
                "Concurrent calls",
                str(self.max_concurrent_calls),
                note="Set the same limit on the PBX trunk (3CX calls it Number of SIM Calls)",
            ),
        ]
        return rows

    def placeholders(self) -> dict[str, str]:
        """The values the vendor steps and configuration snippets refer to."""
        return {
            "registrar": self.registrar,
            "port": str(self.port),
            "transport": self.transport.upper(),
            "transport_lower": self.transport.lower(),
            "username": self.auth_username or "(none: IP Whitelist)",
            "password": self.auth_password or PASSWORD_PLACEHOLDER,
            "realm": self.realm,
            "codec_priority": self.codec_priority,
            "asterisk_codecs": ",".join(ASTERISK_CODECS.get(c, c.lower()) for c in self.codecs),
            "max_calls": str(self.max_concurrent_calls),
            "allowed_ips": ", ".join(self.allowed_ips) or "none yet",
        }


def connection_details(*, trunk: SipTrunk, password: str | None = None) -> ConnectionDetails:
    return ConnectionDetails(
        registrar=settings.SIP_DOMAIN,
        outbound_proxy=settings.SIP_DOMAIN,
        port=sip_port(trunk.transport),
        transport=trunk.transport,
        auth_username=trunk.auth_username if trunk.uses_credentials else None,
        realm=settings.SIP_DOMAIN,
        codecs=tuple(trunk.codecs),
        dtmf="RFC 2833",
        max_concurrent_calls=trunk.max_concurrent_calls,
        allowed_ips=tuple(trunk.allowed_ips) if trunk.uses_ip_whitelist else (),
        auth_password=password,
    )


@dataclass(frozen=True)
class PbxInstructions:
    label: str
    prefills: str
    requirements: tuple[str, ...]
    steps: list[str]
    snippet: str


def pbx_instructions(*, vendor: str, auth_type: str, values: dict[str, str]) -> PbxInstructions:
    """The chosen PBX's "where to click" notes, filled with the trunk's values."""
    profile = vendor_profile(vendor)
    return PbxInstructions(
        label=profile.label,
        prefills=profile.prefills,
        requirements=profile.requirements,
        steps=vendor_steps(profile, auth_type=auth_type, values=values),
        snippet=profile.snippet.format_map(values) if profile.snippet else "",
    )


def trunk_pbx_instructions(*, trunk: SipTrunk, details: ConnectionDetails) -> PbxInstructions:
    return pbx_instructions(vendor=trunk.pbx_vendor, auth_type=trunk.auth_type, values=details.placeholders())


def preview_details(
    *, transport: str, codecs: tuple[str, ...], max_concurrent_calls: int, username: str = ""
) -> ConnectionDetails:
    """What the connection details will look like, before the trunk exists (the wizard's notes)."""
    return ConnectionDetails(
        registrar=settings.SIP_DOMAIN,
        outbound_proxy=settings.SIP_DOMAIN,
        port=sip_port(transport),
        transport=transport,
        auth_username=username or "<Auth Username, shown after Create>",
        realm=settings.SIP_DOMAIN,
        codecs=codecs,
        dtmf="RFC 2833",
        max_concurrent_calls=max_concurrent_calls,
        allowed_ips=(),
    )
