"""Which digest challenges the registrar offers: SIP_DIGEST_ALGORITHMS and the User-Agent quirks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from telephony.registrar import RegistrarSettings, parse_algorithms
from telephony.sip import digest
from telephony.sip.parser import parse_message
from telephony.tests.test_registrar import PBX, REALM, Harness


def offered(response) -> list[str]:
    return [
        c.algorithm for v in response.headers.get_all("WWW-Authenticate") for c in digest.parse_challenges(v)
    ]


def register_as(h: Harness, user_agent: str, *, authorization: str | None = None):
    """A REGISTER from a peer with this User-Agent (the harness's own says FPBX)."""
    h.cseq += 1
    lines = [
        f"REGISTER sip:{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK{h.cseq}ua;rport",
        "Max-Forwards: 70",
        f"From: <sip:sa0001@{REALM}>;tag=f1",
        f"To: <sip:sa0001@{REALM}>",
        "Call-ID: ua-1",
        f"CSeq: {h.cseq} REGISTER",
        "Contact: <sip:pbx@203.0.113.5:5060>",
        "Expires: 300",
    ]
    lines += [f"User-Agent: {user_agent}"] if user_agent else []
    lines += [f"Authorization: {authorization}"] if authorization else []
    raw = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
    return asyncio.run(h.registrar.handle(parse_message(raw), PBX, h.now))


@pytest.mark.parametrize(
    "user_agent",
    ["baresip v1.0.0 (x86_64/linux)", "baresip v2.9.0 (arm/Linux)", "baresip v3.10.1 (x86_64/Linux)"],
)
def test_baresip_before_3_12_is_offered_md5_alone(tmp_path, user_agent):
    h = Harness(tmp_path)
    assert offered(register_as(h, user_agent)) == ["MD5"]


@pytest.mark.parametrize(
    "user_agent",
    ["baresip v3.12.0 (x86_64/Linux)", "baresip v4.1.0", "FPBX-16.0", "Z 5.4.12 baresip v1.0.0", ""],
)
def test_everyone_else_gets_the_configured_offer(tmp_path, user_agent):
    h = Harness(tmp_path)
    assert offered(register_as(h, user_agent)) == ["MD5", "SHA-256"]


def test_the_quirk_answers_the_same_for_known_and_unknown_usernames(tmp_path):
    """Choosing the offer reads the User-Agent only: no username can be told apart by it."""
    h = Harness(tmp_path)
    shapes = []
    for username in ("sa0001", "sa9999"):
        challenge = register_as(h, "baresip v1.0.0 (x86_64/linux)")
        auth = digest.answer_challenge(
            challenge.headers.get_all("WWW-Authenticate"), method="REGISTER", uri=f"sip:{REALM}",
            username=username, password="wrong", cnonce="c0ffee",
        )  # fmt: skip
        wrong = register_as(h, "baresip v1.0.0 (x86_64/linux)", authorization=auth)
        shapes.append([(r.status, sorted(n for n, _ in r.headers), offered(r)) for r in (challenge, wrong)])
    assert shapes[0] == shapes[1]
    assert shapes[0][0][0] == 401 and shapes[0][0][2] == ["MD5"]


def test_the_quirked_peer_registers_with_md5(tmp_path):
    h = Harness(tmp_path)
    challenge = register_as(h, "baresip v1.0.0 (x86_64/linux)")
    auth = digest.answer_challenge(
        challenge.headers.get_all("WWW-Authenticate"), method="REGISTER", uri=f"sip:{REALM}",
        username="sa0001", password="s3cret-pass", cnonce="c0ffee",
    )  # fmt: skip
    assert "algorithm=MD5" in auth
    assert register_as(h, "baresip v1.0.0 (x86_64/linux)", authorization=auth).status == 200


def test_the_setting_orders_the_offer_and_wins_over_the_quirk(tmp_path):
    h = Harness(tmp_path)
    h.registrar.settings = RegistrarSettings(realm=REALM, algorithms=("SHA-256", "MD5"))
    assert offered(h.register()) == ["SHA-256", "MD5"]
    h.registrar.settings = RegistrarSettings(realm=REALM, algorithms=("SHA-256",))
    # The operator turned MD5 off: the quirky peer gets what there is (and fails, as it would).
    assert offered(register_as(h, "baresip v1.0.0 (x86_64/linux)")) == ["SHA-256"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("MD5,SHA-256", ("MD5", "SHA-256")), (" sha-256 , md5 ", ("SHA-256", "MD5")), ("MD5", ("MD5",))],
)
def test_algorithm_lists_are_read_leniently(value, expected):
    assert parse_algorithms(value) == expected


@pytest.mark.parametrize("value", ["", " , ", "MD5,MD5", "SHA-1", "MD5,SHA-512-256", "MD5-sess"])
def test_bad_algorithm_lists_are_refused(value):
    with pytest.raises(ValueError):
        parse_algorithms(value)
    with pytest.raises(ValueError):
        RegistrarSettings(realm=REALM, algorithms=tuple(value.split(",")))


def settings_with(value: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.SIP_DIGEST_ALGORITHMS)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smartalex.settings.test", "SIP_DIGEST_ALGORITHMS": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_setting_is_read_from_the_environment_and_validated():
    good = settings_with("sha-256,MD5")
    assert good.returncode == 0, good.stderr[-2000:]
    assert good.stdout.strip() == "('SHA-256', 'MD5')"
    bad = settings_with("MD5,SHA-1")
    assert bad.returncode != 0 and "SIP_DIGEST_ALGORITHMS" in bad.stderr


def test_the_engine_passes_the_setting_to_the_registrar(settings, tmp_path):
    from telephony.config import ConfigWatcher, EngineConfig
    from telephony.engine import Engine, EngineSettings
    from telephony.event_sink import EventSink
    from telephony.location import SqliteLocationStore

    settings.SIP_DIGEST_ALGORITHMS = ("SHA-256",)
    engine = Engine(
        EngineSettings(realm=REALM, var_dir=tmp_path, nonce_secret=b"k" * 32),
        store=SqliteLocationStore(tmp_path / "loc.sqlite3"),
        watcher=ConfigWatcher(load=EngineConfig, read_version=lambda: 0),
        sink=EventSink(send=lambda events: None),
    )
    assert engine.registrar.settings.algorithms == ("SHA-256",)
