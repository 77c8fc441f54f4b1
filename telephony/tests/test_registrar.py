"""The registrar fed real REGISTER bytes (no sockets): challenge, bindings, failures, diagnosis."""

import asyncio

import pytest

from telephony import events as ev
from telephony.abuse import AbuseGuard
from telephony.config import build_config
from telephony.location import SqliteLocationStore
from telephony.registrar import Registrar, RegistrarSettings
from telephony.sip import digest
from telephony.sip.parser import parse_message
from telephony.transport import Peer

REALM = "sip.voice.getsmartalex.com"
PBX = Peer("udp", "203.0.113.5", 5060)


def trunk_row(**kw):
    row = dict(
        id=1,
        tenant_id=1,
        name="Main",
        pbx_domain="pbx.acme.test",
        auth_username="sa0001",
        ha1_md5=digest.ha1("MD5", "sa0001", REALM, "s3cret-pass"),
        ha1_sha256=digest.ha1("SHA-256", "sa0001", REALM, "s3cret-pass"),
        transport="udp",
    )
    row.update(kw)
    return row


class Harness:
    def __init__(self, tmp_path, rows=None):
        self.events: list = []
        self.config = build_config(rows if rows is not None else [trunk_row()], version=1)
        self.registrar = Registrar(
            settings=RegistrarSettings(realm=REALM),
            config=lambda: self.config,
            store=SqliteLocationStore(tmp_path / "loc.sqlite3"),
            nonces=digest.NonceFactory(b"k" * 32),
            nc_store=digest.MemoryNonceCountStore(),
            guard=AbuseGuard(),
            emit=self.events.append,
        )
        self.cseq = 0
        self.now = 1_000_000.0

    def register(
        self,
        *,
        contact="<sip:pbx@203.0.113.5:5060>",
        expires="300",
        authorization=None,
        peer=PBX,
        call_id="reg-1",
        extra="",
    ):
        self.cseq += 1
        lines = [
            f"REGISTER sip:{REALM} SIP/2.0",
            f"Via: SIP/2.0/{peer.transport.upper()} 203.0.113.5:5060;branch=z9hG4bK{self.cseq}x;rport",
            "Max-Forwards: 70",
            f"From: <sip:sa0001@{REALM}>;tag=f1",
            f"To: <sip:sa0001@{REALM}>",
            f"Call-ID: {call_id}",
            f"CSeq: {self.cseq} REGISTER",
            "User-Agent: FPBX-16.0",
        ]
        if contact is not None:
            lines.append(f"Contact: {contact}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization:
            lines.append(f"Authorization: {authorization}")
        if extra:
            lines.append(extra)
        raw = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
        return asyncio.run(self.registrar.handle(parse_message(raw), peer, self.now))

    def register_with_password(self, password="s3cret-pass", username="sa0001", **kw):
        challenge = self.register(**kw)
        assert challenge.status == 401
        auth = digest.answer_challenge(
            challenge.headers.get_all("WWW-Authenticate"),
            method="REGISTER",
            uri=f"sip:{REALM}",
            username=username,
            password=password,
            cnonce="c0ffee",
        )
        return self.register(authorization=auth, **kw)


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path)


def test_challenge_offers_md5_then_sha256(h):
    response = h.register()
    assert response.status == 401
    algorithms = [
        v.split("algorithm=")[1].split(",")[0] for v in response.headers.get_all("WWW-Authenticate")
    ]
    assert algorithms == ["MD5", "SHA-256"]


def test_sha256_credentials_are_accepted(h):
    challenge = h.register()
    sha = [v for v in challenge.headers.get_all("WWW-Authenticate") if "SHA-256" in v]
    auth = digest.answer_challenge(
        sha, method="REGISTER", uri=f"sip:{REALM}", username="sa0001", password="s3cret-pass", cnonce="abc"
    )
    assert "algorithm=SHA-256" in auth
    assert h.register(authorization=auth).status == 200


def test_register_binds_and_lists_contacts_with_expiry(h):
    response = h.register_with_password()
    assert response.status == 200
    assert response.headers.get_all("Contact") == ("<sip:pbx@203.0.113.5:5060>;expires=300",)
    assert response.headers.get("Date", "").endswith("GMT")
    registered = [e for e in h.events if isinstance(e, ev.TrunkRegistered)]
    assert len(registered) == 1 and registered[0].trunk_id == 1 and registered[0].warnings == ()
    assert h.registrar.trunk_on_flow(PBX) == 1


def test_unknown_user_and_wrong_password_answer_the_same(h):
    wrong = h.register_with_password(password="nope")
    unknown = h.register_with_password(username="sa9999")
    assert (wrong.status, wrong.reason) == (unknown.status, unknown.reason) == (403, "Forbidden")
    assert sorted(n for n, _ in wrong.headers) == sorted(n for n, _ in unknown.headers)
    reasons = [(e.trunk_id, e.reason) for e in h.events if isinstance(e, ev.RegisterAuthFailed)]
    assert reasons == [(1, "wrong_password"), (None, "unknown_user")]


def test_too_brief_interval_is_423_with_min_expires(h):
    response = h.register_with_password(expires="30")
    assert response.status == 423 and response.headers.get("Min-Expires") == "60"


def test_expires_is_capped_and_star_removes_everything(h):
    assert h.register_with_password(expires="86400").headers.get("Contact").endswith("expires=3600")
    h.register_with_password(contact="<sip:pbx@203.0.113.5:5062>")
    assert len(h.register_with_password(contact=None, expires=None).headers.get_all("Contact")) == 2
    cleared = h.register_with_password(contact="*", expires="0")
    assert cleared.status == 200 and cleared.headers.get_all("Contact") == ()
    assert isinstance(h.events[-1], ev.TrunkUnregistered)


def test_star_without_expires_zero_is_400(h):
    assert h.register_with_password(contact="*", expires="300").status == 400


def test_refresh_is_reported_as_refresh(h):
    h.register_with_password()
    h.now += 100
    assert h.register_with_password().status == 200
    assert [type(e).__name__ for e in h.events] == ["TrunkRegistered", "TrunkRefreshed"]


def test_suspended_trunk_gets_403_after_proving_its_credentials(tmp_path):
    h = Harness(tmp_path, rows=[trunk_row(suspended=True)])
    response = h.register_with_password()
    assert (response.status, response.reason) == (403, "Trunk suspended")


def test_private_contact_from_public_source_and_transport_mismatch_are_diagnosed(tmp_path):
    h = Harness(tmp_path, rows=[trunk_row(transport="tls")])
    h.register_with_password(contact="<sip:pbx@192.168.1.10:5060>")
    warnings = [e for e in h.events if isinstance(e, ev.TrunkRegistered)][0].warnings
    assert any("private address 192.168.1.10" in w for w in warnings)
    assert any("transport mismatch" in w for w in warnings)


def test_ip_whitelist_trunk_registers_without_credentials(tmp_path):
    h = Harness(tmp_path, rows=[trunk_row(auth_username=None, allowed_ips=["203.0.113.5"])])
    assert h.register().status == 200
    assert h.register(peer=Peer("udp", "198.51.100.1", 5060)).status == 401


def test_twenty_wrong_passwords_ban_the_source(h):
    for _ in range(20):
        h.register_with_password(password="guess")
    assert PBX.ip in h.registrar.guard.bans


def test_expired_bindings_are_swept_and_reported(h):
    h.register_with_password(expires="60")
    h.now += 61
    assert asyncio.run(h.registrar.sweep(h.now)) == 1
    assert isinstance(h.events[-1], ev.TrunkExpired)


def test_refreshes_within_the_report_interval_send_one_event(h):
    h.register_with_password()
    for _ in range(5):
        h.now += 5
        assert h.register_with_password().status == 200
    assert [type(e).__name__ for e in h.events] == ["TrunkRegistered"]
    h.now += 31
    h.register_with_password()
    assert [type(e).__name__ for e in h.events] == ["TrunkRegistered", "TrunkRefreshed"]


def test_a_stale_second_contact_does_not_make_every_refresh_news(h):
    h.register_with_password(contact="<sip:pbx@203.0.113.5:5062>")
    h.register_with_password(contact="<sip:pbx@203.0.113.5:5060>")
    h.now += 40
    h.register_with_password(contact="<sip:pbx@203.0.113.5:5060>")
    assert [type(e).__name__ for e in h.events] == ["TrunkRegistered", "TrunkRegistered", "TrunkRefreshed"]


def two_processes(tmp_path) -> tuple[Harness, Harness]:
    """Two engine processes (`sipserver --workers 2`) over one location store, both warmed."""
    first, second = Harness(tmp_path), Harness(tmp_path)
    for harness in (first, second):
        asyncio.run(harness.registrar.warm(harness.now))
    return first, second


def test_a_registration_landing_on_another_process_lists_every_binding(tmp_path):
    first, second = two_processes(tmp_path)
    first.register_with_password(contact="<sip:pbx@203.0.113.5:5060>", call_id="boot-1")
    # The PBX restarts: a new Call-ID, which the kernel may hand to the other process.
    response = second.register_with_password(contact="<sip:pbx@203.0.113.5:5062>", call_id="boot-2")
    assert sorted(response.headers.get_all("Contact")) == [
        "<sip:pbx@203.0.113.5:5060>;expires=300",
        "<sip:pbx@203.0.113.5:5062>;expires=300",
    ]


def test_contact_star_on_another_process_removes_every_binding(tmp_path):
    first, second = two_processes(tmp_path)
    first.register_with_password(call_id="boot-1")
    second.register_with_password(contact="*", expires="0", call_id="boot-2")
    assert asyncio.run(first.registrar.store.bindings(1, now=first.now)) == []


def test_an_address_that_registers_two_trunks_identifies_neither(tmp_path):
    rows = [trunk_row(), trunk_row(id=2, auth_username="sa0002", name="Other")]
    rows[1]["ha1_md5"] = digest.ha1("MD5", "sa0002", REALM, "s3cret-pass")
    rows[1]["ha1_sha256"] = digest.ha1("SHA-256", "sa0002", REALM, "s3cret-pass")
    h = Harness(tmp_path, rows)
    proxy = Peer("udp", "198.51.100.7", 5060)  # a proxy or shared gateway in front of two PBXs
    assert h.register_with_password(peer=proxy, call_id="a").status == 200
    assert h.registrar.trunk_on_flow(proxy) == 1
    assert h.register_with_password(peer=proxy, username="sa0002", call_id="b").status == 200
    assert h.registrar.trunk_on_flow(proxy) is None  # INVITEs from it are challenged


class CountingStore(SqliteLocationStore):
    """The real embedded store, counting the reads the registrar makes of it."""

    reads = 0

    async def bindings(self, trunk_id, *, now):
        self.reads += 1
        return await super().bindings(trunk_id, now=now)


def test_a_known_contact_under_a_new_call_id_from_its_address_is_answered_without_a_store_read(tmp_path):
    h = Harness(tmp_path)
    h.registrar.store = store = CountingStore(tmp_path / "counted.sqlite3")
    asyncio.run(h.registrar.warm(h.now))
    h.register_with_password(call_id="boot-1")  # a new contact: read the shared store first
    assert store.reads == 1
    # sipp, and some PBXs, start a new Call-ID for every refresh: still a refresh.
    assert h.register_with_password(call_id="boot-2").status == 200
    assert store.reads == 1
    assert [type(e).__name__ for e in h.events] == ["TrunkRegistered"]
    # The same contact from another address (NAT rebinding, a restarted PBX) is news again.
    h.register_with_password(call_id="boot-3", peer=Peer("udp", "203.0.113.5", 6000))
    assert store.reads == 2
