"""The engine's diagnosis in words: the troubleshooting guide's symptoms, as a pure function.

`diagnose(facts)` reads nothing: the selectors gather `TrunkFacts` from the database, so the
rules are table-tested without one (support/tests/test_diagnosis.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from trunks.validators import is_nat_address


class Severity(StrEnum):
    ERROR = "error"  # calls or transfers fail because of it
    WARNING = "warning"  # likely to cause trouble
    INFO = "info"  # all good, or worth knowing


@dataclass(frozen=True)
class Finding:
    severity: Severity
    words: str
    fix: str
    code: str = ""


@dataclass(frozen=True)
class TrunkFacts:
    """What is known about a trunk right now; every field has a harmless default."""

    suspended: bool = False
    state: str = "not_registered"  # registered | not_registered | unreachable
    uses_credentials: bool = True
    uses_ip_whitelist: bool = False
    ever_registered: bool = False
    # Reason codes of REGISTER failures in the last hour (wrong_password, unknown_user, ...).
    recent_auth_failures: tuple[str, ...] = ()
    sip_alg_suspected: bool = False
    trunk_transport: str = "udp"
    registered_transport: str = ""
    flapping: bool = False
    did_count: int = 0
    has_agent: bool = False
    extension_count: int | None = None  # None: the directory is not known
    pbx_domain: str = ""
    registered_source_ip: str = ""
    # Final SIP codes the PBX gave to recent transfers that failed (486, 603, 404...).
    transfer_failure_codes: tuple[int, ...] = ()
    # DIDs the PBX sent calls for that are not on this trunk.
    unknown_dids_called: tuple[str, ...] = field(default_factory=tuple)


CREDENTIAL_REASONS = {"wrong_password", "unknown_user", "wrong_realm", "missing_credentials", "malformed"}


def diagnose(facts: TrunkFacts) -> list[Finding]:
    """Findings, worst first. An empty problem list yields one INFO finding that all is well."""
    findings: list[Finding] = []
    add = findings.append
    if facts.suspended:
        add(
            Finding(
                Severity.ERROR,
                "The trunk is suspended: SmartAlex refuses its calls and the AI cannot transfer.",
                "Reactivate the trunk on its page.",
                "suspended",
            )
        )
    reasons = set(facts.recent_auth_failures)
    if reasons & CREDENTIAL_REASONS:
        words = "The PBX's REGISTER was refused: wrong credentials"
        if "wrong_realm" in reasons:
            words += " (the PBX sends a realm: leave the Auth realm blank)"
        elif "unknown_user" in reasons:
            words += " (the Auth Username is not one SmartAlex issued)"
        add(
            Finding(
                Severity.ERROR,
                words + ". The PBX log shows 401 or 403.",
                "Re-copy the Auth Username and password from the connection details, "
                "or regenerate the password and enter it on the PBX.",
                "wrong_credentials",
            )
        )
    needs_registration = facts.uses_credentials and not facts.uses_ip_whitelist
    if facts.sip_alg_suspected:
        add(
            Finding(
                Severity.WARNING,
                "SIP ALG suspected: the Contact carries a private address while the REGISTER came "
                "from a public one. SIP ALG breaks session timers, REFER targets and SDP.",
                "Turn SIP ALG off on the router or firewall in front of the PBX "
                "(Cisco ASA: no sip inspect; FortiGate: sip-disable-session-helpers).",
                "sip_alg",
            )
        )
    if facts.registered_transport and facts.registered_transport.lower() != facts.trunk_transport.lower():
        add(
            Finding(
                Severity.WARNING,
                f"Transport mismatch: the trunk is set to {facts.trunk_transport.upper()} but the PBX "
                f"registers over {facts.registered_transport.upper()}.",
                "Use the same transport on both sides (UDP on 5060 is the default; TLS uses 5061).",
                "transport_mismatch",
            )
        )
    if facts.state == "unreachable":
        add(
            Finding(
                Severity.ERROR,
                "The PBX does not answer OPTIONS: a firewall or NAT closed the path back to it.",
                "Allow SIP from sip.voice.getsmartalex.com (FQDN rule, or UDP 5060 outbound) and "
                "keep the NAT pinhole open with a re-register interval under 60 s.",
                "unreachable",
            )
        )
    elif needs_registration and facts.state != "registered" and not (reasons & CREDENTIAL_REASONS):
        if facts.ever_registered:
            words = "The registration expired: the PBX stopped refreshing it."
        else:
            words = "The PBX has never registered: no REGISTER reached SmartAlex."
        add(
            Finding(
                Severity.ERROR,
                words + " Outbound UDP 5060 may be blocked, or the transport does not match.",
                "Check the PBX trunk points at sip.voice.getsmartalex.com port 5060 (UDP/TCP) or 5061 (TLS), "
                "that outbound UDP 5060 is open, and that SIP ALG is off.",
                "not_registered",
            )
        )
    if facts.flapping:
        add(
            Finding(
                Severity.WARNING,
                "The registration is flapping (3 or more changes in 15 minutes): usually NAT timeouts or SIP ALG.",
                "Turn SIP ALG off and lower the PBX's re-register interval.",
                "flapping",
            )
        )
    if facts.did_count == 0:
        add(
            Finding(
                Severity.ERROR,
                "The trunk has no DIDs: a call to a number that is not in its DIDs list fails.",
                "Add the numbers on the trunk's DIDs list.",
                "no_did",
            )
        )
    if facts.unknown_dids_called:
        numbers = ", ".join(facts.unknown_dids_called)
        several = len(facts.unknown_dids_called) > 1
        add(
            Finding(
                Severity.ERROR,
                f"Calls arrive for {numbers}, which {'are not DIDs' if several else 'is not a DID'} of this "
                "trunk: SmartAlex answers 404 Not Found and the caller hears nothing.",
                f"Add {'them' if several else 'it'} under DIDs on the trunk's page; if "
                f"{'they belong' if several else 'it belongs'} elsewhere, fix the PBX inbound route.",
                "did_not_on_trunk",
            )
        )
    if not facts.has_agent:
        add(
            Finding(
                Severity.ERROR,
                "No agent is linked to the trunk: its calls are not answered and the AI cannot transfer.",
                "Agent Studio → Telephony tab → select the trunk.",
                "agent_not_linked",
            )
        )
    if facts.extension_count == 0:
        add(
            Finding(
                Severity.WARNING,
                "No extensions: the AI cannot transfer callers by name.",
                "Add extensions with display names and aliases in Settings → PBX (CSV upload for many).",
                "no_extensions",
            )
        )
    codes = set(facts.transfer_failure_codes)
    if codes & {486, 603}:
        shown = "/".join(str(c) for c in sorted(codes & {486, 603}))
        add(
            Finding(
                Severity.WARNING,
                f"The PBX accepted the transfer but the extension rejected it ({shown}: busy or declined).",
                "Check the extension's do-not-disturb, call forwarding and ring group on the PBX.",
                "extension_rejected",
            )
        )
    if codes & {404, 484, 416}:
        add(
            Finding(
                Severity.ERROR,
                f"The PBX answered {'/'.join(str(c) for c in sorted(codes & {404, 484, 416}))} to "
                f"sip:EXT@{facts.pbx_domain or 'pbx_domain'}: the extension does not exist there, "
                "or the PBX SIP Domain is wrong.",
                "Check the extension numbers in Settings → PBX and the trunk's PBX SIP Domain.",
                "wrong_pbx_domain",
            )
        )
    if _domain_differs_from_source(facts.pbx_domain, facts.registered_source_ip):
        add(
            Finding(
                Severity.WARNING,
                f"The PBX SIP Domain {facts.pbx_domain} is an address, but the PBX registers from "
                f"{facts.registered_source_ip}: transfers go to sip:EXT@{facts.pbx_domain}.",
                "Set the PBX SIP Domain to the hostname or address the PBX presents.",
                "wrong_pbx_domain",
            )
        )
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    if not findings:
        findings.append(
            Finding(Severity.INFO, "No problem found: the trunk is registered and set up.", "", "ok")
        )
    return findings


def _domain_differs_from_source(domain: str, source_ip: str) -> bool:
    try:
        domain_ip = ipaddress.ip_address(domain.strip("[]"))
        source = ipaddress.ip_address(source_ip.strip("[]"))
    except ValueError:
        return False
    # A private domain address behind NAT is normal: only compare two public addresses.
    return domain_ip != source and not is_nat_address(domain_ip) and not is_nat_address(source)
