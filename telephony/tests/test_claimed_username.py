"""The username a request claims, as the engine's traces label it (read by the digest core)."""

import pytest

from telephony.engine import _claimed_username
from telephony.sip.message import Request
from telephony.sip.parser import parse_message


def request_with(header: str) -> Request:
    return parse_message(
        (
            "INVITE sip:100@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n"
            "From: <sip:a@example.test>;tag=1\r\nTo: <sip:100@example.test>\r\nCall-ID: c1\r\n"
            f"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{header}Content-Length: 0\r\n\r\n"
        ).encode()
    )


@pytest.mark.parametrize(
    ("header", "username"),
    [
        (
            'Authorization: Digest username="pbx01", realm="r", nonce="n", uri="sip:x", response="0"\r\n',
            "pbx01",
        ),
        (
            'Proxy-Authorization: Digest username="pbx02", realm="r", nonce="n", uri="sip:x", response="0"\r\n',
            "pbx02",
        ),
        # A quote inside the name: the old hand parser cut it at the backslash.
        (
            'Authorization: Digest username="we\\"ird", realm="r", nonce="n", uri="sip:x", response="0"\r\n',
            'we"ird',
        ),
        # "username=" inside another quoted value is not the username.
        (
            'Authorization: Digest realm="a username=", username="real", nonce="n", uri="s", response="0"\r\n',
            "real",
        ),
        ('Authorization: Digest username="unterminated\r\n', ""),
        ("Authorization: Basic dXNlcjpwYXNz\r\n", ""),
        ("", ""),
    ],
)
def test_claimed_username(header, username):
    assert _claimed_username(request_with(header)) == username


def test_a_long_claim_is_cut_for_the_trace():
    header = f'Authorization: Digest username="{"u" * 300}", realm="r", nonce="n", uri="s", response="0"\r\n'
    assert _claimed_username(request_with(header)) == "u" * 128
