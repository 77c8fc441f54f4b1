"""What each PBX in the wizard's dropdown brings: its defaults and "where to click on your PBX".

The SmartAlex side is the same for every PBX (the generic guide); only the PBX's menus differ.
Steps are plain text with `{placeholders}` filled from the trunk's connection details, so the
customer reads their own values where the guide says "(from SmartAlex)". A step can apply only
to trunks that register with credentials, or only to IP Whitelist trunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .models import AuthType, PbxVendor, Transport

AuthScope = Literal["credentials", "ip"] | None


@dataclass(frozen=True)
class Step:
    text: str
    only: AuthScope = None  # None: every trunk; "credentials": registering trunks; "ip": IP Whitelist only


@dataclass(frozen=True)
class VendorProfile:
    vendor: PbxVendor
    transport: str
    codecs: tuple[str, ...]
    auth_type: str
    prefills: str  # what choosing this PBX pre-fills, in the customer's words
    requirements: tuple[str, ...]
    steps: tuple[Step, ...]
    snippet: str = ""  # a configuration file excerpt, for PBXs configured by text

    @property
    def label(self) -> str:
        return self.vendor.label


G711 = ("PCMU", "PCMA")
G711_G722 = ("PCMU", "PCMA", "G722")

# From the generic guide: what every PBX needs, and the steps that follow the PBX-specific ones.
GENERIC_REQUIREMENTS = (
    "SIP (any version, RFC 3261) and a generic SIP trunk (register-based or IP-based auth).",
    "SIP REFER (RFC 3515) for transfers.",
    "RFC 2833 DTMF.",
    "G.711 u-law or A-law codecs (G.722 optional, G.729 only if licensed on both sides).",
)
COMMON_FINAL_STEPS = (
    Step(
        "Route inbound DIDs to the trunk: create an inbound rule (or equivalent) so that when a DID "
        "rings, the call goes out via the SmartAlex trunk — your PBX's “external routing” or "
        "“forward” mechanism handles this. Add the same numbers to this trunk's DIDs list in SmartAlex."
    ),
    Step(
        "Turn SIP ALG off on the router or firewall in front of the PBX (Cisco ASA: no sip inspect; "
        "FortiGate: sip-disable-session-helpers): it breaks session timers, transfers and audio."
    ),
)

ASTERISK_SNIPPET = """\
; pjsip.conf — SmartAlex trunk
[smartalex]
type=registration
transport=transport-{transport_lower}
outbound_auth=smartalex-auth
server_uri=sip:{registrar}:{port}
client_uri=sip:{username}@{registrar}:{port}
retry_interval=60

[smartalex-auth]
type=auth
auth_type=userpass
username={username}
password={password}

[smartalex]
type=aor
contact=sip:{registrar}:{port}

[smartalex]
type=endpoint
transport=transport-{transport_lower}
context=from-smartalex
disallow=all
allow={asterisk_codecs}
outbound_auth=smartalex-auth
aors=smartalex
dtmf_mode=rfc4733
direct_media=no

[smartalex]
type=identify
endpoint=smartalex
match={registrar}
"""

PROFILES: dict[str, VendorProfile] = {
    PbxVendor.OTHER: VendorProfile(
        vendor=PbxVendor.OTHER,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials (digest) authentication.",
        requirements=GENERIC_REQUIREMENTS,
        steps=(
            Step(
                "Create a new trunk: look for “SIP Trunks”, “Voice Gateways”, “External Lines” or “Providers”."
            ),
            Step(
                "Registrar / Outbound Proxy (“Registrar Domain”, “SIP Server” or “Host”): {registrar}, "
                "port {port}."
            ),
            Step(
                "Credentials (“Auth Username”, “SIP Auth ID”): {username}, with the Auth Password. "
                "Auth realm: leave blank unless your PBX requires one.",
                only="credentials",
            ),
            Step(
                "Credentials: none. SmartAlex recognises your PBX by its public address ({allowed_ips}).",
                only="ip",
            ),
            Step("Codecs (“Codec Priority”, “Voice Codec Selection”): {codec_priority}."),
            Step("Transport (“Protocol”, “Transport Layer”): {transport}. DTMF: RFC 2833."),
            Step("DIDs (“DID Numbers”, “Inbound Routes”, “Telephone Numbers”): see the last step."),
        ),
    ),
    PbxVendor.THREECX: VendorProfile(
        vendor=PbxVendor.THREECX,
        transport=Transport.UDP,
        codecs=G711,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 and digest (Register/Account based) authentication.",
        requirements=(
            "3CX v18 or later (v20 recommended).",
            "A StartUP Pro licence or higher: SMB Free only allows approved trunk providers.",
        ),
        steps=(
            Step("Open the 3CX admin console (https://<your-pbx>.3cx.cloud:5001)."),
            Step(
                "v20: Voice & Chat → Add Trunk. v18: SIP Trunks → Add SIP Trunk. Country: Generic; "
                "Provider: Generic VoIP Provider. Leave Main Trunk No. blank."
            ),
            Step(
                "Registrar/Server/Gateway: {registrar}, port {port}. Outbound Proxy: {registrar}, port {port}."
            ),
            Step("Number of SIM Calls: {max_calls} (this trunk's concurrent-call limit)."),
            Step(
                "Authentication: Register/Account based. Authentication ID (SIP User ID): {username}; "
                "Authentication Password: the Auth Password.",
                only="credentials",
            ),
            Step("Authentication: Do not require – IP based.", only="ip"),
            Step("Codecs: G.711 U-law, then G.711 A-law. DTMF: RFC 2833. Transport: {transport}."),
            Step("OK to save: the trunk turns green (Registered) within 30 seconds."),
        ),
    ),
    PbxVendor.FREEPBX: VendorProfile(
        vendor=PbxVendor.FREEPBX,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials authentication.",
        requirements=("FreePBX 15 or later with the chan_pjsip driver.",),
        steps=(
            Step("Connectivity → Trunks → Add Trunk → Add SIP (chan_pjsip) Trunk."),
            Step("General: Trunk Name “SmartAlex”; Maximum Channels: {max_calls}."),
            Step(
                "pjsip Settings → General: Username and Auth username {username}; Secret: the Auth "
                "Password; Authentication: Outbound; Registration: Send; SIP Server: {registrar}; "
                "SIP Server Port: {port}; Transport: 0.0.0.0-{transport_lower}; Context: from-pstn.",
                only="credentials",
            ),
            Step(
                "pjsip Settings → General: Authentication: None; Registration: None; SIP Server: "
                "{registrar}; SIP Server Port: {port}; Transport: 0.0.0.0-{transport_lower}.",
                only="ip",
            ),
            Step("pjsip Settings → Advanced: DTMF Mode: RFC 4733 (the same as RFC 2833)."),
            Step("pjsip Settings → Codecs: {asterisk_codecs}, in that order."),
            Step("Submit, then Apply Config. Reports → Asterisk Info → Registries shows it Registered."),
        ),
    ),
    PbxVendor.ASTERISK: VendorProfile(
        vendor=PbxVendor.ASTERISK,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials authentication.",
        requirements=("Asterisk 13 or later with res_pjsip (the configuration below is for pjsip.conf).",),
        steps=(
            Step(
                "Add the sections below to pjsip.conf (your transport section must be named "
                "transport-{transport_lower}), then run: pjsip reload."
            ),
            Step(
                "IP Whitelist trunks need no registration: leave out the type=registration and "
                "type=auth sections and the outbound_auth line.",
                only="ip",
            ),
            Step("Point the DIDs' dialplan at the endpoint: Dial(PJSIP/<DID>@smartalex)."),
            Step("Check: pjsip show registrations lists smartalex as Registered."),
        ),
        snippet=ASTERISK_SNIPPET,
    ),
    PbxVendor.YEASTAR: VendorProfile(
        vendor=PbxVendor.YEASTAR,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials (Register Trunk) authentication.",
        requirements=("Yeastar P-Series or S-Series.",),
        steps=(
            Step(
                "P-Series: PBX Settings → Trunks → Add. S-Series: Settings → PBX → Trunks → VoIP Trunk → Add."
            ),
            Step(
                "ITSP Template: General; Trunk Type: Register Trunk; Transport: {transport}; "
                "Hostname/IP: {registrar}, port {port}; Domain: {registrar}.",
                only="credentials",
            ),
            Step(
                "Username and Authentication Name: {username}; Password: the Auth Password.",
                only="credentials",
            ),
            Step(
                "ITSP Template: General; Trunk Type: Peer Trunk; Transport: {transport}; "
                "Hostname/IP: {registrar}, port {port}.",
                only="ip",
            ),
            Step("Codec: {codec_priority}. DTMF Mode: RFC2833. Max Concurrent Calls: {max_calls}."),
        ),
    ),
    PbxVendor.GRANDSTREAM: VendorProfile(
        vendor=PbxVendor.GRANDSTREAM,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials (Register SIP Trunk) authentication.",
        requirements=("Grandstream UCM6200/6300 series.",),
        steps=(
            Step("Extension/Trunk → VoIP Trunks → Add SIP Trunk."),
            Step(
                "Type: Register SIP Trunk; Provider Name: SmartAlex; Host Name: {registrar}:{port}; "
                "Username and Authentication ID: {username}; Password: the Auth Password.",
                only="credentials",
            ),
            Step("Type: Peer SIP Trunk; Provider Name: SmartAlex; Host Name: {registrar}:{port}.", only="ip"),
            Step(
                "Advanced Settings: Codec Preference: {codec_priority}; DTMF Mode: RFC2833; "
                "Max Number of Calls: {max_calls}; Transport: {transport}."
            ),
        ),
    ),
    PbxVendor.CISCO: VendorProfile(
        vendor=PbxVendor.CISCO,
        transport=Transport.UDP,
        codecs=G711,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711, and credentials authentication (CUBE registers; CUCM trunks go through CUBE).",
        requirements=("Cisco CUBE (IOS XE) in front of CUCM: CUCM SIP trunks do not register, CUBE does.",),
        steps=(
            Step(
                "On CUBE, under sip-ua: credentials username {username} password 0 <Auth Password> "
                "realm {registrar}; registrar 1 dns:{registrar}:{port} expires 3600.",
                only="credentials",
            ),
            Step(
                "On CUBE, a dial-peer voip towards SmartAlex: session target dns:{registrar}:{port}; "
                "session transport {transport_lower}; dtmf-relay rtp-nte; a voice class codec with "
                "g711ulaw then g711alaw."
            ),
            Step("In CUCM: Device → Trunk → Add New → SIP Trunk pointing at your CUBE."),
            Step("Cisco ASA in the path: no sip inspect."),
        ),
    ),
    PbxVendor.AVAYA: VendorProfile(
        vendor=PbxVendor.AVAYA,
        transport=Transport.UDP,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711 then G.722, and credentials authentication.",
        requirements=(
            "Avaya IP Office: a SIP Line. Avaya Aura: connect through Avaya SBCE with the same values.",
        ),
        steps=(
            Step("IP Office Manager: Line → New → SIP Line. ITSP Domain Name: {registrar}."),
            Step(
                "Transport: ITSP Proxy Address {registrar}; Layer 4 Protocol {transport}; Send Port {port}."
            ),
            Step(
                "SIP Credentials → Add: User Name and Authentication Name {username}; Password: the "
                "Auth Password; Registration required: ticked.",
                only="credentials",
            ),
            Step(
                "VoIP: Codec Selection: Custom — {codec_priority}; DTMF Support: RFC2833/RFC4733; "
                "Re-invite Supported and REFER Support: on."
            ),
        ),
    ),
    PbxVendor.MITEL: VendorProfile(
        vendor=PbxVendor.MITEL,
        transport=Transport.UDP,
        codecs=G711,
        auth_type=AuthType.CREDENTIALS,
        prefills="UDP, G.711, and credentials (Registration) authentication.",
        requirements=("Mitel MiVoice Business (System Administration Tool).",),
        steps=(
            Step(
                "Trunks → SIP → SIP Peer Profile → Add. Address Type: FQDN; FQDN: {registrar}; Port: {port}."
            ),
            Step(
                "Authentication Option: Registration; User Name and Registration User Name: {username}; "
                "Password: the Auth Password.",
                only="credentials",
            ),
            Step("Maximum Simultaneous Calls: {max_calls}; Transport: {transport}; DTMF: RFC 2833."),
            Step("Routing: point the DIDs' ARS route at this SIP peer."),
        ),
    ),
    PbxVendor.TEAMS: VendorProfile(
        vendor=PbxVendor.TEAMS,
        transport=Transport.TLS,
        codecs=G711_G722,
        auth_type=AuthType.CREDENTIALS,
        prefills="TLS, G.711 then G.722, and credentials authentication from your SBC.",
        requirements=(
            "Teams Direct Routing goes through a Microsoft-certified SBC paired with your tenant: "
            "SmartAlex connects to the SBC, not to Teams itself.",
        ),
        steps=(
            Step(
                "On the SBC, add SmartAlex as a SIP trunk (IP Group): {registrar}, port {port}, {transport}."
            ),
            Step(
                "SBC registration account: username {username}, the Auth Password, registrar {registrar}.",
                only="credentials",
            ),
            Step("Coders: {codec_priority}. DTMF: RFC 2833."),
            Step(
                "Route the DIDs' calls from Teams (voice routing policy) through the SBC to the SmartAlex trunk."
            ),
        ),
    ),
}


def vendor_profile(vendor: str) -> VendorProfile:
    return PROFILES.get(vendor) or PROFILES[PbxVendor.OTHER]


def vendor_steps(profile: VendorProfile, *, auth_type: str, values: dict[str, str]) -> list[str]:
    """The steps that apply to this trunk's authentication, with its values filled in."""
    uses_credentials = auth_type in (AuthType.CREDENTIALS, AuthType.BOTH)
    uses_ip = auth_type in (AuthType.IP_WHITELIST, AuthType.BOTH)
    steps = [*profile.steps, *COMMON_FINAL_STEPS]
    applicable = [
        s
        for s in steps
        if s.only is None
        or (s.only == "credentials" and uses_credentials)
        or (s.only == "ip" and uses_ip and not uses_credentials)
    ]
    return [s.text.format_map(values) for s in applicable]
