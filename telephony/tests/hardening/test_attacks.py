"""Attacks on a live engine on 127.0.0.1: SIPVicious (svmap, svwar, svcrack) as child processes,
digest replay, and stale nonces. Loopback is trusted by default, so these engines run with
`trusted_sources=()`: bans apply to 127.0.0.1 exactly as they would to a stranger on the internet."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from telephony.abuse import AbuseSettings
from telephony.location import RedisLocationStore
from telephony.shared_state import RedisBanBook, RedisNonceCounts
from telephony.sip import digest
from telephony.tests.hardening.support import (
    NONCE_SECRET,
    ROOT,
    PrivateRedis,
    StoreEngineThread,
    UdpPhone,
    answer,
    free_port,
    static_config,
    trunk_row,
    wait_for,
)

pytestmark = pytest.mark.slow

PASSWORD = "Kx9-correct-pass-0001-abc"  # 24+ characters, like the ones the portal generates
KNOWN = "user0001"
DISGUISE = "Z 5.4.12 v2.10.17.2"  # a softphone's User-Agent: the scanner filter cannot help


def start_engine(tmp_path, rows, store_factory=None, **abuse) -> StoreEngineThread:
    return StoreEngineThread(
        tmp_path,
        load=static_config(rows),
        tls=False,
        settings={"abuse": AbuseSettings(trusted_sources=(), **abuse)},
        store_factory=store_factory,
    ).start()


@pytest.fixture
def engine(tmp_path):
    thread = start_engine(tmp_path, [trunk_row(1, username=KNOWN, password=PASSWORD)])
    yield thread
    thread.stop()


def sipvicious(engine, tool: str, *args: str, disguise: str | None = DISGUISE, timeout: float = 120):
    prefix = ["--disguise", disguise] if disguise else []
    common = ["-p", str(engine.udp[1]), "-P", str(free_port()), "-b", "127.0.0.1"]
    return subprocess.run(
        [sys.executable, "-m", "telephony.tests.hardening.sipvicious_run", *prefix, tool, *common, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- scanning and enumeration -------------------------------------------------------------------


def test_svmap_as_itself_gets_no_answer(engine):
    run = sipvicious(engine, "svmap", "127.0.0.1", disguise=None)
    assert "found nothing" in run.stderr, run.stdout + run.stderr
    assert "SmartAlex" not in run.stdout
    assert engine.engine.guard.counters["scanner_dropped"] >= 1


def test_svwar_finds_no_extension_even_disguised(engine, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join([KNOWN, "101", "admin", "user0002", "1000"]) + "\n")
    for args in (["-d", str(words)], ["-d", str(words), "--force"], ["-e", "100-120", "--force"]):
        run = sipvicious(engine, "svwar", *args, "127.0.0.1")
        output = run.stdout + run.stderr
        assert "found nothing" in output, output
        assert KNOWN not in run.stdout, output
    assert engine.engine.registrar.stats.registrations == 0


def test_known_and_unknown_usernames_get_identical_answers(engine):
    """What svwar and svcrack would have to tell apart: nothing differs but the nonce and tags."""
    phone = UdpPhone(engine.udp)
    try:
        shapes = {}
        for user in (KNOWN, "nobody-here", "101"):
            challenge = phone.register(user)
            wrong = phone.register(user, authorization=answer(challenge, user, "not-the-password"))
            shapes[user] = [
                (r.status, r.reason, sorted(k for k, _ in r.headers), len(r.all("WWW-Authenticate")))
                for r in (challenge, wrong)
            ]
        assert shapes[KNOWN][0][:2] == (401, "Unauthorized")
        assert shapes[KNOWN][1][:2] == (403, "Forbidden")
        assert shapes[KNOWN] == shapes["nobody-here"] == shapes["101"]
    finally:
        phone.close()


# --- brute force ----------------------------------------------------------------------------------


def test_svcrack_source_is_banned_after_twenty_failures(engine):
    run = sipvicious(
        engine, "svcrack", "-u", KNOWN, "-r", "1-60", "-t", "0.05", "--maximumtime", "4", "127.0.0.1"
    )
    guard = engine.engine.guard
    assert "127.0.0.1" in guard.bans, run.stdout + run.stderr
    assert guard.counters["bans"] == 1
    # The ban falls on the 20th failure; a guess or two already read off the socket may still be
    # judged, everything after is dropped unread (svcrack had 60 guesses).
    assert 20 <= engine.engine.registrar.stats.auth_failures <= 25
    assert guard.counters["banned_dropped"] > 0
    # Banned means ignored: even the right password from that source gets no answer now.
    phone = UdpPhone(engine.udp)
    try:
        assert phone.register(KNOWN, timeout=1.5) is None
    finally:
        phone.close()


def test_a_whitelisted_trunk_source_is_never_banned(tmp_path):
    # Credentials *and* an allow-listed address: a PBX with a mistyped password keeps failing,
    # and must still never be locked out (the customer would lose every call).
    engine = start_engine(
        tmp_path, [trunk_row(1, username=KNOWN, password=PASSWORD, allowed_ips=["127.0.0.1"])]
    )
    try:
        sipvicious(
            engine, "svcrack", "-u", KNOWN, "-r", "1-40", "-t", "0.05", "--maximumtime", "4", "127.0.0.1"
        )
        assert engine.engine.registrar.stats.auth_failures >= 30  # every guess was answered
        assert engine.engine.guard.bans == {}
        phone = UdpPhone(engine.udp)
        try:
            ok, _ = phone.login(KNOWN, PASSWORD)
            assert ok is not None and ok.status == 200
        finally:
            phone.close()
    finally:
        engine.stop()


# --- digest replay and stale nonces --------------------------------------------------------------


def test_replayed_digest_is_refused(engine):
    phone = UdpPhone(engine.udp)
    try:
        ok, authorization = phone.login(KNOWN, PASSWORD)
        assert ok.status == 200
        replay = phone.register(KNOWN, authorization=authorization)  # same nonce, same nc
        assert replay.status == 401 and replay.all("WWW-Authenticate")
        assert "stale=true" not in " ".join(replay.all("WWW-Authenticate")).lower()
        # The same nonce with the next nc is a legitimate client: accepted.
        nonce = digest.parse_credentials(authorization).param("nonce")
        next_nc = answer(replay, KNOWN, PASSWORD, nc=2, nonce=nonce)
        assert phone.register(KNOWN, authorization=next_nc).status == 200
    finally:
        phone.close()


def test_expired_nonce_right_password_is_stale(engine):
    phone = UdpPhone(engine.udp)
    try:
        challenge = phone.register(KNOWN)
        old = digest.NonceFactory(NONCE_SECRET).issue(time.time() - 3600)  # ours, but an hour old
        response = phone.register(KNOWN, authorization=answer(challenge, KNOWN, PASSWORD, nonce=old))
        assert response.status == 401
        assert all("stale=true" in v.lower() for v in response.all("WWW-Authenticate"))
        assert engine.engine.registrar.stats.auth_failures == 0  # not a failure: just refresh the nonce
    finally:
        phone.close()


def test_expired_nonce_wrong_password_is_not_stale(engine):
    phone = UdpPhone(engine.udp)
    try:
        challenge = phone.register(KNOWN)
        old = digest.NonceFactory(NONCE_SECRET).issue(time.time() - 3600)
        response = phone.register(KNOWN, authorization=answer(challenge, KNOWN, "wrong-guess", nonce=old))
        assert response.status != 200
        assert not any("stale" in v.lower() for v in response.all("WWW-Authenticate"))
    finally:
        phone.close()


# --- several engines (SO_REUSEPORT or a dispatcher) share nonce counts and bans ------------------


@pytest.fixture
def two_engines(tmp_path):
    """Two engines of one deployment: the same nonce secret and the same (private) Redis, where
    their bindings, nonce counts and bans live, as two sipservers with one REDIS_URL have."""
    redis = PrivateRedis(tmp_path / "redis").start()
    rows = [trunk_row(1, username=KNOWN, password=PASSWORD)]
    engines = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            engines.append(start_engine(tmp_path / name, rows, lambda: RedisLocationStore(redis.url)))
        yield engines
    finally:
        for engine in engines:
            engine.stop()
        redis.stop()


def test_the_engines_share_their_security_state_through_redis(two_engines):
    for engine in two_engines:
        assert isinstance(engine.engine.security.counts, RedisNonceCounts)
        assert isinstance(engine.engine.security.bans, RedisBanBook)


def test_an_invite_digest_replayed_to_another_engine_is_challenged_again(two_engines):
    first, second = two_engines
    number = "+27115550100"  # no DID of this trunk: authenticated INVITEs end in 404
    phone = UdpPhone(first.udp)
    try:
        challenge = phone.invite(number)
        assert challenge is not None and challenge.status == 407
        proxy_authorization = digest.answer_challenge(
            challenge.all("Proxy-Authenticate"),
            method="INVITE",
            uri=phone.invite_uri(number),
            username=KNOWN,
            password=PASSWORD,
            cnonce="c0ffee",
            nc=1,
        )
        assert phone.invite(number, proxy_authorization=proxy_authorization).status == 404  # let in
        phone.server = second.udp
        assert phone.invite(number, proxy_authorization=proxy_authorization).status == 407  # replay
    finally:
        phone.close()


def test_a_baresip_1_invite_is_challenged_with_md5_alone(two_engines):
    phone = UdpPhone(two_engines[0].udp, user_agent="baresip v1.0.0 (x86_64/linux)")
    try:
        challenge = phone.invite("+27115550100")
        assert challenge.status == 407
        assert [v.split("algorithm=")[1].split(",")[0] for v in challenge.all("Proxy-Authenticate")] == [
            "MD5"
        ]
    finally:
        phone.close()


def test_a_digest_replayed_to_another_engine_is_refused(two_engines):
    first, second = two_engines
    phone = UdpPhone(first.udp)
    try:
        ok, authorization = phone.login(KNOWN, PASSWORD)
        assert ok.status == 200
        phone.server = second.udp
        replay = phone.register(KNOWN, authorization=authorization)
        assert replay.status == 401  # a fresh challenge, as at the first engine
        # The next count of that nonce is a legitimate client, at either engine.
        nonce = digest.parse_credentials(authorization).nonce
        assert (
            phone.register(KNOWN, authorization=answer(replay, KNOWN, PASSWORD, nc=2, nonce=nonce)).status
            == 200
        )
        phone.server = first.udp
        assert (
            phone.register(KNOWN, authorization=answer(replay, KNOWN, PASSWORD, nc=2, nonce=nonce)).status
            == 401
        )
    finally:
        phone.close()


def test_a_ban_reaches_the_other_engines(two_engines):
    first, second = two_engines
    sipvicious(first, "svcrack", "-u", KNOWN, "-r", "1-30", "-t", "0.05", "--maximumtime", "3", "127.0.0.1")
    assert "127.0.0.1" in first.engine.guard.bans
    assert second.engine.registrar.stats.auth_failures == 0  # the second engine saw no guess
    # Propagation takes one sync round (0.5 s); generous here for a loaded machine.
    assert wait_for(lambda: "127.0.0.1" in second.engine.guard.bans, timeout=10)
    phone = UdpPhone(second.udp)
    try:
        assert phone.register(KNOWN, timeout=1.5) is None  # dropped, like at the first engine
    finally:
        phone.close()
    assert second.engine.guard.counters["banned_dropped"] >= 1
