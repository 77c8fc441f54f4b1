"""Digest authentication: RFC vectors, client/server back to back, and the security rules."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.sip import digest
from telephony.sip.digest import (
    AuthFailure,
    Credentials,
    MemoryNonceCountStore,
    NonceFactory,
    NonceStatus,
    answer_challenge,
    build_challenges,
    challenges_after,
    digest_response,
    ha1,
    parse_challenge,
    parse_challenges,
    parse_credentials,
    uri_matches,
    verify,
)
from telephony.sip.errors import ParseError, PeerError

SECRET = b"engine-shared-secret-32-bytes!!!"
REALM = "sip.voice.getsmartalex.com"
NOW = 1_750_000_000.0
URI = "sip:sip.voice.getsmartalex.com"


def counter_bytes():
    """Deterministic salts, so two factories fed the same sequence mint the same nonces."""
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


@pytest.fixture
def nonces() -> NonceFactory:
    return NonceFactory(SECRET, lifetime=300, token_bytes=counter_bytes())


@pytest.fixture
def nc_store() -> MemoryNonceCountStore:
    return MemoryNonceCountStore()


USERS = {"trunk-42": "correct horse battery staple 24"}


def lookup(username: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return ha1(algorithm, username, REALM, password) if password is not None else None


def check(value: str, nonces, nc_store, *, now: float = NOW, method: str = "REGISTER"):
    return verify(
        parse_credentials(value),
        method=method,
        ha1_lookup=lookup,
        realm=REALM,
        nonces=nonces,
        nc_store=nc_store,
        now=now,
    )


def client(challenges, *, password=USERS["trunk-42"], username="trunk-42", nc=1, method="REGISTER"):
    return answer_challenge(
        challenges, method=method, uri=URI, username=username, password=password, cnonce="0a4f113b", nc=nc
    )


# --- RFC vectors --------------------------------------------------------------------------------

# RFC 7616 §3.9.1 (password "Circle of Life", lower-case "of": erratum 4495).
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_RESPONSES = {
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
}
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


class AlwaysValid:
    """The RFC's nonce is not one of ours; this stands in for the nonce check."""

    def check(self, nonce: str, now: float) -> NonceStatus:
        return NonceStatus.VALID


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_rfc7616_vector_client(algorithm):
    value = answer_challenge(
        RFC7616_CHALLENGE.format(alg=algorithm),
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    creds = parse_credentials(value)
    assert creds.response == RFC7616_RESPONSES[algorithm]
    assert (creds.algorithm, creds.qop, creds.nc_text, creds.cnonce) == (
        algorithm,
        "auth",
        "00000001",
        RFC7616_CNONCE,
    )
    assert creds.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_rfc7616_vector_server(algorithm):
    # The RFC's Authorization header, laid out over several lines as in the RFC.
    value = f"""Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm={algorithm},
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="{RFC7616_CNONCE}",
       qop=auth,
       response="{RFC7616_RESPONSES[algorithm]}",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
    result = verify(
        parse_credentials(value),
        method="GET",
        ha1_lookup=lambda user, alg: ha1(alg, user, "http-auth@example.org", "Circle of Life"),
        realm="http-auth@example.org",
        nonces=AlwaysValid(),
        nc_store=MemoryNonceCountStore(),
        now=NOW,
    )
    assert result.ok and result.algorithm == algorithm and result.username == "Mufasa"


def test_rfc2617_example():
    # RFC 2617 §3.5 (password "Circle Of Life", capital O there).
    value = """Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41\""""
    creds = parse_credentials(value)
    assert creds.algorithm == "MD5"  # the default when absent
    stored = ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    expected = digest_response(
        algorithm="MD5",
        ha1=stored,
        nonce=creds.nonce,
        method="GET",
        uri=creds.uri,
        qop=creds.qop,
        nc=creds.nc_text,
        cnonce=creds.cnonce,
    )
    assert expected == "6629fae49393a05397450978507c4ef1"
    result = verify(
        creds,
        method="GET",
        ha1_lookup=lambda user, alg: stored,
        realm="testrealm@host.com",
        nonces=AlwaysValid(),
        nc_store=MemoryNonceCountStore(),
        now=NOW,
    )
    assert result.ok


def test_ha1_is_the_hash_of_user_realm_password():
    assert ha1("MD5", "bob", "biloxi.com", "zanzibar") == hashlib.md5(b"bob:biloxi.com:zanzibar").hexdigest()
    assert (
        ha1("sha-256", "bob", "biloxi.com", "zanzibar")
        == hashlib.sha256(b"bob:biloxi.com:zanzibar").hexdigest()
    )
    with pytest.raises(ValueError):
        ha1("SHA-512-256", "bob", "biloxi.com", "zanzibar")


# --- client and server back to back -------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("SHA-256",), ("MD5",)])
def test_round_trip(nonces, nc_store, algorithms):
    challenges = build_challenges(REALM, nonces.issue(NOW), algorithms=algorithms)
    value = client(challenges)
    assert parse_credentials(value).algorithm == algorithms[0]
    result = check(value, nonces, nc_store, now=NOW + 1)
    assert result.ok and result.reason is None and not result.stale
    assert result.username == "trunk-42" and result.algorithm == algorithms[0]


def test_client_picks_the_strongest_algorithm_whatever_the_order(nonces):
    challenges = build_challenges(REALM, nonces.issue(NOW), algorithms=("MD5", "SHA-256"))
    assert parse_credentials(client(challenges)).algorithm == "SHA-256"
    # Both challenges folded into one header value.
    assert parse_credentials(client(", ".join(challenges))).algorithm == "SHA-256"


def test_client_refuses_challenges_it_cannot_answer():
    with pytest.raises(PeerError):
        client('Digest realm="a", nonce="b", algorithm=SHA-512-256')
    with pytest.raises(PeerError):
        client('Basic realm="a"')
    with pytest.raises(PeerError):
        client('Digest realm="a", nonce="b", qop="auth-conf"')


def test_client_answers_auth_int_when_that_is_all_there_is():
    value = answer_challenge(
        'Digest realm="a", nonce="n", qop="auth-int"',
        method="INVITE",
        uri="sip:bob@b",
        username="u",
        password="p",
        cnonce="c",
        body=b"v=0\r\n",
    )
    creds = parse_credentials(value)
    assert creds.qop == "auth-int"
    assert creds.response == digest_response(
        algorithm="MD5",
        ha1=ha1("MD5", "u", "a", "p"),
        nonce="n",
        method="INVITE",
        uri="sip:bob@b",
        qop="auth-int",
        nc="00000001",
        cnonce="c",
        body=b"v=0\r\n",
    )


def test_nonce_from_one_engine_verifies_at_another(nc_store):
    issued = NonceFactory(SECRET).issue(NOW)
    other_engine = NonceFactory(SECRET)
    assert other_engine.check(issued, NOW + 10) is NonceStatus.VALID
    assert check(client(build_challenges(REALM, issued)), other_engine, nc_store, now=NOW + 10).ok


def test_secret_rotation_keeps_outstanding_nonces_valid():
    issued = NonceFactory(SECRET).issue(NOW)
    rotated = NonceFactory(b"the-new-secret-also-32-bytes-long", previous_secrets=[SECRET])
    assert rotated.check(issued, NOW) is NonceStatus.VALID
    assert NonceFactory(b"the-new-secret-also-32-bytes-long").check(issued, NOW) is NonceStatus.INVALID


def test_nonces_are_unique_and_url_safe():
    factory = NonceFactory(SECRET)
    minted = {factory.issue(NOW) for _ in range(200)}  # same instant, distinct salts
    assert len(minted) == 200
    assert all(n.replace("-", "").replace("_", "").isalnum() for n in minted)


# --- the security rules -------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_look_the_same(nc_store):
    def attempt(username, password):
        factory = NonceFactory(SECRET, token_bytes=counter_bytes())
        value = client(build_challenges(REALM, factory.issue(NOW)), username=username, password=password)
        result = check(value, factory, nc_store, now=NOW + 1)
        return result, challenges_after(result, realm=REALM, nonces=factory, now=NOW + 1)

    unknown, unknown_challenges = attempt("nobody", "whatever")
    wrong, wrong_challenges = attempt("trunk-42", "not the password")
    assert unknown.reason is AuthFailure.UNKNOWN_USER
    assert wrong.reason is AuthFailure.WRONG_PASSWORD
    assert (unknown.ok, unknown.stale) == (wrong.ok, wrong.stale) == (False, False)
    assert unknown_challenges == wrong_challenges
    assert all("stale" not in c for c in wrong_challenges)


def test_unknown_user_costs_the_same_hashing(monkeypatch, nonces, nc_store):
    challenges = build_challenges(REALM, nonces.issue(NOW))
    unknown, wrong = client(challenges, username="nobody"), client(challenges, password="wrong")
    calls = []
    real = digest.digest_response
    monkeypatch.setattr(digest, "digest_response", lambda **kw: calls.append(kw["ha1"]) or real(**kw))
    check(unknown, nonces, nc_store)
    check(wrong, nonces, nc_store)
    assert len(calls) == 2 and len(calls[0]) == len(calls[1])  # a dummy HA1 of the same length


def test_stale_only_with_the_right_password(nonces, nc_store):
    old = nonces.issue(NOW - 301)
    challenges = build_challenges(REALM, old)

    right = check(client(challenges), nonces, nc_store)
    assert (right.ok, right.stale, right.reason) == (False, True, AuthFailure.STALE_NONCE)
    assert "stale=true" in challenges_after(right, realm=REALM, nonces=nonces, now=NOW)[0]

    wrong = check(client(challenges, password="guess"), nonces, nc_store)
    assert (wrong.ok, wrong.stale, wrong.reason) == (False, False, AuthFailure.WRONG_PASSWORD)

    unknown = check(client(challenges, username="nobody"), nonces, nc_store)
    assert (unknown.stale, unknown.reason) == (False, AuthFailure.UNKNOWN_USER)


def test_nonce_from_the_future_beyond_clock_skew_is_stale(nonces):
    assert nonces.check(nonces.issue(NOW + 10), NOW) is NonceStatus.VALID
    assert nonces.check(nonces.issue(NOW + 60), NOW) is NonceStatus.STALE


def test_forged_nonces(nonces, nc_store):
    real = nonces.issue(NOW)
    flipped = real[:5] + ("A" if real[5] != "A" else "B") + real[6:]
    foreign = NonceFactory(b"some-other-deployment-secret-xyz").issue(NOW)
    for forged in ["dcd98b7102dd2f0e8b11d0f600bfb0c093", flipped, foreign, real + "=", real[:-1], ""]:
        assert nonces.check(forged, NOW) is NonceStatus.FORGED is NonceStatus.INVALID
        result = check(client(build_challenges(REALM, forged or "x")), nonces, nc_store)
        assert (result.ok, result.stale) == (False, False)
        assert result.reason is AuthFailure.BAD_NONCE


def test_other_spellings_of_a_nonce_are_refused(nonces):
    # base64 has spare bits in the last character; a second spelling of one nonce would get
    # a fresh nonce-count history.
    real = nonces.issue(NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spellings = [real[:-1] + c for c in alphabet if c != real[-1]]
    assert all(nonces.check(s, NOW) is NonceStatus.INVALID for s in spellings)


def test_replayed_nonce_count_is_refused(nonces, nc_store):
    challenges = build_challenges(REALM, nonces.issue(NOW))
    first = client(challenges, nc=1)
    assert check(first, nonces, nc_store).ok
    replay = check(first, nonces, nc_store)
    assert (replay.ok, replay.reason, replay.stale) == (False, AuthFailure.REPLAY, False)


def test_increasing_nonce_counts_are_accepted_and_going_back_is_not(nonces, nc_store):
    challenges = build_challenges(REALM, nonces.issue(NOW))
    assert check(client(challenges, nc=1), nonces, nc_store).ok
    assert check(client(challenges, nc=2), nonces, nc_store).ok
    assert check(client(challenges, nc=7), nonces, nc_store).ok  # gaps are fine
    assert check(client(challenges, nc=5), nonces, nc_store).reason is AuthFailure.REPLAY


def test_a_failed_attempt_does_not_burn_the_count(nonces, nc_store):
    challenges = build_challenges(REALM, nonces.issue(NOW))
    assert not check(client(challenges, nc=1, password="guess"), nonces, nc_store).ok
    assert check(client(challenges, nc=1), nonces, nc_store).ok


def test_legacy_rfc2069_md5_is_good_for_one_request(nonces, nc_store):
    challenges = build_challenges(REALM, nonces.issue(NOW), algorithms=("MD5",), qop=None)
    assert "qop" not in challenges[0]
    value = client(challenges)
    assert parse_credentials(value).qop is None
    assert check(value, nonces, nc_store).ok
    assert check(value, nonces, nc_store).reason is AuthFailure.REPLAY


def test_sha256_without_qop_and_auth_int_are_malformed(nonces, nc_store):
    sha = client(build_challenges(REALM, nonces.issue(NOW), algorithms=("SHA-256",), qop=None))
    assert check(sha, nonces, nc_store).reason is AuthFailure.MALFORMED
    auth_int = client(build_challenges(REALM, nonces.issue(NOW), qop="auth-int"))
    assert check(auth_int, nonces, nc_store).reason is AuthFailure.MALFORMED
    no_cnonce = client(build_challenges(REALM, nonces.issue(NOW))).replace('cnonce="0a4f113b", ', "")
    assert check(no_cnonce, nonces, nc_store).reason is AuthFailure.MALFORMED


def test_wrong_realm_and_unsupported_algorithm(nonces, nc_store):
    challenges = build_challenges("pbx.example.com", nonces.issue(NOW))
    assert check(client(challenges), nonces, nc_store).reason is AuthFailure.WRONG_REALM
    sess = client(build_challenges(REALM, nonces.issue(NOW))).replace(
        "algorithm=SHA-256", "algorithm=SHA-256-sess"
    )
    assert check(sess, nonces, nc_store).reason is AuthFailure.UNSUPPORTED_ALGORITHM


def test_unknown_scheme_regaut01_is_a_challenge_not_a_400(nonces, nc_store):
    # RFC 4475 §3.3.7: well formed; the registrar answers 401 with a fresh challenge.
    creds = parse_credentials("NoOneKnowsThisScheme opaque-data=here")
    assert creds.scheme == "NoOneKnowsThisScheme" and not creds.is_digest
    assert creds.param("opaque-data") == "here"
    result = verify(
        creds, method="REGISTER", ha1_lookup=lookup, realm=REALM, nonces=nonces, nc_store=nc_store, now=NOW
    )
    assert (result.ok, result.stale, result.reason) == (False, False, AuthFailure.UNSUPPORTED_SCHEME)
    assert parse_credentials("Basic dXNlcjpwYXNz").scheme == "Basic"


# --- the nonce-count store ----------------------------------------------------------------------


def test_store_forgets_nonces_after_their_ttl():
    store = MemoryNonceCountStore(ttl=330)
    assert store.accept("n1", 1, now=NOW)
    assert not store.accept("n1", 1, now=NOW + 329)
    assert store.accept("n2", 1, now=NOW + 331)  # expiry runs on every call
    assert len(store) == 1
    assert store.accept("n1", 1, now=NOW + 331)


def test_store_is_bounded():
    store = MemoryNonceCountStore(max_entries=3)
    for i in range(10):
        assert store.accept(f"n{i}", 1, now=NOW)
    assert len(store) == 3
    assert not store.accept("n9", 1, now=NOW)


# --- parsing ------------------------------------------------------------------------------------


def test_parsing_tolerates_odd_whitespace_case_and_quoting():
    creds = parse_credentials(
        'digest  USERNAME = "tr\\"unk" ,Realm="r",\r\n\tnonce="n" , uri="sip:a@b;transport=udp",'
        'response="ABC", algorithm="sha-256", QOP="auth", nc="0000000A", cnonce="c",,'
    )
    assert creds.is_digest and creds.username == 'tr"unk'
    assert (creds.realm, creds.nonce, creds.uri) == ("r", "n", "sip:a@b;transport=udp")
    assert (creds.algorithm, creds.qop, creds.nc, creds.nc_text) == ("SHA-256", "auth", 10, "0000000A")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"Digest" username="a"',
        "Digest",
        'Digest username="a", realm="r", nonce="n", uri="u"',  # no response
        'Digest username="a" realm="r", nonce="n", uri="u", response="x"',  # missing comma
        'Digest username="a, realm="r", nonce="n", uri="u", response="x"',  # unterminated
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=1',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=0x000001',
        'Digest username=, realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", Digest username="b"',
        "Digest =x",
    ],
)
def test_malformed_credentials_are_a_400(value):
    with pytest.raises(ParseError) as raised:
        parse_credentials(value)
    assert raised.value.status == 400


def test_challenges_are_written_sha256_first():
    values = build_challenges(REALM, "abc", opaque="o", stale=True)
    assert [parse_challenge(v).algorithm for v in values] == ["SHA-256", "MD5"]
    parsed = parse_challenge(values[0])
    assert (parsed.realm, parsed.nonce, parsed.qop, parsed.opaque, parsed.stale) == (
        REALM,
        "abc",
        ("auth",),
        "o",
        True,
    )
    assert not parse_challenge(build_challenges(REALM, "abc")[0]).stale


def test_parse_challenges_splits_one_header_value():
    value = 'Digest realm="a", nonce="1", algorithm=SHA-256, Basic realm="b", Digest realm="c", nonce="2"'
    found = parse_challenges(value)
    assert [(c.scheme, c.realm or c.params) for c in found] == [
        ("Digest", "a"),
        ("Basic", (("realm", "b"),)),
        ("Digest", "c"),
    ]
    with pytest.raises(ParseError):
        parse_challenge(value)
    with pytest.raises(ParseError):
        parse_challenge('Digest realm="a"')  # no nonce


def test_uri_matches_is_lenient_about_case_and_parameter_order():
    assert uri_matches("sip:Example.COM;transport=udp;lr", "SIP:example.com;lr;transport=UDP")
    assert uri_matches("sip:101@pbx.example.com", "sip:101@pbx.example.com")
    assert not uri_matches("sip:101@pbx.example.com", "sip:102@pbx.example.com")
    assert not uri_matches("sip:Alice@pbx.example.com", "sip:alice@pbx.example.com")  # user part is exact
    assert not uri_matches("sip:pbx.example.com", "sip:other.example.com")


# --- fuzzing ------------------------------------------------------------------------------------

VALID = (
    'Digest username="trunk-42", realm="sip.voice.getsmartalex.com", nonce="abc", '
    'uri="sip:sip.voice.getsmartalex.com", response="0123456789abcdef", algorithm=MD5, '
    'cnonce="0a4f113b", qop=auth, nc=00000001, opaque="x"'
)


@given(st.text())
def test_parse_credentials_only_ever_raises_parse_error(value):
    try:
        result = parse_credentials(value)
    except ParseError:
        return
    assert isinstance(result, Credentials)


@given(st.data())
def test_mutated_credentials_only_ever_raise_parse_error(data):
    value = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value)))
        cut = data.draw(st.integers(0, 5))
        insert = data.draw(st.sampled_from(['"', ",", "=", "\\", " ", "\r\n", "Digest ", "", "\x00", "é"]))
        value = value[:at] + insert + value[at + cut :]
    try:
        creds = parse_credentials(value)
    except ParseError:
        return
    factory = NonceFactory(SECRET)
    verify(
        creds,
        method="REGISTER",
        ha1_lookup=lookup,
        realm=REALM,
        nonces=factory,
        nc_store=MemoryNonceCountStore(),
        now=NOW,
    )


@given(st.text())
def test_parse_challenges_only_ever_raises_parse_error(value):
    try:
        found = parse_challenges(value)
    except ParseError:
        return
    assert found


@given(st.text(max_size=60))
def test_nonce_check_never_raises(value):
    assert NonceFactory(SECRET).check(value, NOW) in (
        NonceStatus.INVALID,
        NonceStatus.VALID,
        NonceStatus.STALE,
    )
