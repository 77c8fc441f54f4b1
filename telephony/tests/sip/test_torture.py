"""RFC 4475 torture messages: one row per EXPECTED.md entry, with the exact outcome for our endpoint.

Every row is run as a UDP datagram and, fed whole and one byte at a time, through the stream
framer; `stream` says what a TCP connection must see for the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from telephony.sip.errors import MalformedMessage
from telephony.sip.headers import CSeq
from telephony.sip.message import Request, Response
from telephony.sip.parser import InvalidMessage, parse_message
from telephony.sip.uas_checks import check_request
from telephony.sip.uri import AbsoluteUri, Params, SipUri
from telephony.tests.sip.helpers import SERVER, TORTURE_DIR, endpoint_outcome, feed, feed_until_failure, load

Message = Request | Response


# --- values the valid messages must parse to -------------------------------------------------------


def wsinv(m: Message) -> None:
    assert isinstance(m, Request) and m.method == "INVITE"
    assert m.uri == SipUri("chair-dnrc.example.com", "vivekg", params=Params([("unknownparam", None)]))
    assert m.max_forwards == 68
    assert m.cseq == CSeq(9, "INVITE")
    assert (m.to.uri, m.to.display_name, m.to.tag) == (
        SipUri("chair-dnrc.example.com", "vivekg"),
        None,
        "1918181833n",
    )
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert [(v.transport, v.sent_by, v.branch) for v in m.vias] == [
        ("UDP", ("192.0.2.2", None), "390skdjuw"),
        ("TCP", ("spindle.example.com", None), "z9hG4bK9ikj8"),
        ("UDP", ("192.168.255.111", None), "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.uri == SipUri("example.com", "jdrosen")
    assert contact.params.pairs() == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert contact.q == 0.33
    assert m.routes[0].uri.params.pairs() == (
        ("lr", None),
        ("unknownwith", "value"),
        ("unknown-no-value", None),
    )
    assert m.content_type is not None and m.content_type.mime_type == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\no=mhandley")


def intmeth(m: Message) -> None:
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to.uri == SipUri("example.com", "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params["fromParam''~+*_!.-%"] == "работающий"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def esc01(m: Message) -> None:
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert (m.uri.user, m.uri.host) == ("sips:user@example.com", "example.net")
    assert m.to.uri == SipUri("example.com", "user")
    assert m.from_.uri == SipUri("example.net", "I have spaces")
    (contact,) = m.contacts
    assert contact.uri == SipUri(
        "host5.example.net", "caller", params=Params([("lr", None), ("name", "value%41")])
    )


def escnull(m: Message) -> None:
    assert isinstance(m, Request) and m.method == "REGISTER"
    assert isinstance(m.to.uri, SipUri) and m.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts if isinstance(c.uri, SipUri)] == ["\x00", "\x00\x00"]
    first, second = (c.uri for c in m.contacts)
    assert isinstance(first, SipUri) and isinstance(second, SipUri)
    assert first.address_of_record() != second.address_of_record()


def esc02(m: Message) -> None:
    assert isinstance(m, Request) and m.method == "RE%47IST%45R"
    assert m.to.display_name == "%Z%45"
    assert [str(c.uri) for c in m.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"


def lwsdisp(m: Message) -> None:
    assert (m.from_.display_name, m.from_.uri, m.from_.tag) == (
        "caller",
        SipUri("example.com", "caller"),
        "323",
    )


def longreq(m: Message) -> None:
    assert len(m.vias) == 34
    assert m.vias[0].host == "sip33.example.com" and m.vias[-1].received == "192.0.2.5"
    assert m.to.display_name is not None and m.to.display_name.endswith("extreme proportion")
    assert isinstance(m.to.uri, SipUri) and m.to.uri.port == 6000
    assert (
        "verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue"
        in m.to.uri.params
    )
    assert m.from_.tag is not None and len(m.from_.tag) == 155 and m.from_.tag.endswith("982424")
    assert m.call_id.endswith("reallylongcallid")
    assert len(m.body) == 150


def dblreq(m: Message) -> None:
    assert isinstance(m, Request) and m.method == "REGISTER"
    assert m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.contacts[0].uri == SipUri("host.example.com", "j.user")


def semiuri(m: Message) -> None:
    assert isinstance(m, Request)
    assert m.uri == SipUri("example.com", "user;par=u@example.net")
    assert str(m.uri) == "sip:user;par=u%40example.net@example.com"
    assert m.accept is not None
    assert [r.mime_type for r in m.accept] == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def transports(m: Message) -> None:
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def mpart01(m: Message) -> None:
    assert isinstance(m, Request) and m.method == "MESSAGE"
    assert len(m.body) == 553 and m.body == load("mpart01.dat")[-553:]
    assert m.body.count(b"\n") - m.body.count(b"\r\n") == 3  # the binary part's bare LFs
    assert m.content_type is not None and m.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert m.top_via.rport_requested and m.top_via.rport is None


def unreason(m: Message) -> None:
    assert isinstance(m, Response) and m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def noreason(m: Message) -> None:
    assert isinstance(m, Response) and (m.status, m.reason) == (100, "")


def badbranch(m: Message) -> None:
    assert m.top_via.branch == "z9hG4bK" and not m.top_via.has_rfc3261_branch


def baddate(m: Message) -> None:
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def bcast(m: Message) -> None:
    assert isinstance(m, Response) and m.status == 200
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


def unkscm(m: Message) -> None:
    assert isinstance(m, Request) and m.uri == AbsoluteUri("nobodyKnowsThisScheme", "totallyopaquecontent")


def novelsc(m: Message) -> None:
    assert isinstance(m, Request) and m.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")


def unksm2(m: Message) -> None:
    assert m.to.uri == AbsoluteUri("isbn", "2983792873")
    assert m.from_.uri == AbsoluteUri("http", "//www.example.com") and m.from_.tag == "3234233"
    assert m.contacts[0].uri == AbsoluteUri("name", "John_Smith")


def regaut01(m: Message) -> None:
    (credentials,) = m.auth("Authorization")
    assert credentials.scheme == "NoOneKnowsThisScheme"
    assert credentials.params.pairs() == (("opaque-data", "here"),)


def zeromf(m: Message) -> None:
    assert m.max_forwards == 0


def cparam01(m: Message) -> None:
    (contact,) = m.contacts
    assert contact.uri == SipUri("gw1.example.net", "+19725552222")  # no unknownparam on the URI
    assert contact.params.pairs() == (("unknownparam", None),)


def cparam02(m: Message) -> None:
    (contact,) = m.contacts
    assert contact.uri == SipUri("gw1.example.net", "+19725552222", params=Params([("unknownparam", None)]))
    assert len(contact.params) == 0


def regescrt(m: Message) -> None:
    (contact,) = m.contacts
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def bext01(m: Message) -> None:
    assert m.require == ("nothingSupportsThis", "nothingSupportsThisEither")


def inv2543(m: Message) -> None:
    data = load("inv2543.dat")
    assert m.body == data[data.index(b"\r\n\r\n") + 4 :]  # rest of the datagram
    assert "Content-Length" not in m.headers
    assert m.max_forwards is None and m.top_via.branch is None and m.from_.tag is None


def nothing_more(m: Message) -> None:
    """Rows whose interest is the endpoint outcome alone."""


# --- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    file: str
    # ("process"|"uas"|"parse"|"drop"|"response", status) as `endpoint_outcome` reports it.
    outcome: tuple[str, int | None]
    # Parsed rows: values to check. Rejected rows: a fragment of the parser's reason.
    check: Callable[[Message], None] | str = nothing_more
    # On a stream: "same" (one item, as over UDP), "wait" (needs more bytes), "close".
    stream: str = "same"


ROWS = [
    # §3.1.1 valid
    Row("wsinv.dat", ("process", None), wsinv),
    Row("intmeth.dat", ("uas", 501), intmeth),
    Row("esc01.dat", ("process", None), esc01),
    Row("escnull.dat", ("process", None), escnull),
    Row("esc02.dat", ("uas", 501), esc02),
    Row("lwsdisp.dat", ("process", None), lwsdisp),
    Row("longreq.dat", ("process", None), longreq),
    Row("dblreq.dat", ("process", None), dblreq, stream="dblreq"),
    Row("semiuri.dat", ("process", None), semiuri),
    Row("transports.dat", ("process", None), transports),
    Row("mpart01.dat", ("uas", 405), mpart01),  # valid; we do not serve MESSAGE
    Row("unreason.dat", ("response", 200), unreason),
    Row("noreason.dat", ("response", 100), noreason),
    # §3.1.2 invalid
    Row("badinv01.dat", ("parse", 400), "malformed header parameters"),
    Row("clerr.dat", ("parse", 400), "Content-Length 9999", stream="wait"),
    Row("ncl.dat", ("parse", 400), "Content-Length is not a number", stream="close"),
    Row("scalar02.dat", ("parse", 400), "CSeq number out of range"),
    Row("scalarlg.dat", ("drop", None), "CSeq number out of range"),
    Row("quotbal.dat", ("parse", 400), "unterminated quoted display name"),
    Row("ltgtruri.dat", ("parse", 400), "must not be enclosed in <>"),
    Row("lwsruri.dat", ("parse", 400), "Request-Line must be"),
    Row("lwsstart.dat", ("parse", 400), "Request-Line must be"),
    Row("trws.dat", ("parse", 400), "Request-Line must be"),
    Row("escruri.dat", ("parse", 400), "must not carry headers"),
    Row("baddate.dat", ("process", None), baddate),
    Row("regbadct.dat", ("uas", 400)),
    Row("badaspec.dat", ("parse", 400), "not a URI"),
    Row("baddn.dat", ("parse", 400), "no empty line", stream="wait"),
    Row("badvers.dat", ("parse", 505), "SIP/7.0 is not supported"),
    Row("mismatch01.dat", ("parse", 400), "CSeq method INVITE does not match OPTIONS"),
    Row("mismatch02.dat", ("parse", 501), "unknown method"),
    Row("bigcode.dat", ("drop", None), "status code"),
    # §3.2
    Row("badbranch.dat", ("process", None), badbranch),
    # §3.3
    Row("insuf.dat", ("parse", 400), "missing From, To, Call-ID"),
    Row("unkscm.dat", ("uas", 416), unkscm),
    Row("novelsc.dat", ("uas", 416), novelsc),
    Row("unksm2.dat", ("uas", 400), unksm2),
    Row("bext01.dat", ("uas", 420), bext01),
    Row("invut.dat", ("uas", 415)),
    Row("regaut01.dat", ("process", None), regaut01),
    Row("multi01.dat", ("parse", 400), "appears 2 times"),
    Row("mcl01.dat", ("parse", 400), "Content-Length values disagree", stream="close"),
    Row("bcast.dat", ("response", 200), bcast),
    Row("zeromf.dat", ("process", None), zeromf),
    Row("cparam01.dat", ("process", None), cparam01),
    Row("cparam02.dat", ("process", None), cparam02),
    Row("regescrt.dat", ("process", None), regescrt),
    Row("sdp01.dat", ("uas", 406)),
    # §3.4
    Row("inv2543.dat", ("process", None), inv2543, stream="close"),
    # Not an RFC 4475 message: must simply not crash.
    Row("test.dat", ("unanswerable", 400), "header field without a colon", stream="close"),
    # The archive's baddn with its missing blank line added: now rejected for what it tests.
    Row("variants/baddn.crlf-terminated.dat", ("parse", 400), "display name must be quoted"),
]


def _id(row: Row) -> str:
    return row.file.removesuffix(".dat")


def test_table_covers_every_torture_file() -> None:
    files = {path.relative_to(TORTURE_DIR).as_posix() for path in TORTURE_DIR.rglob("*.dat")}
    assert files == {row.file for row in ROWS}
    assert len(files) == 51


def test_torture_files_are_byte_exact() -> None:
    sums = (TORTURE_DIR / "SHA256SUMS").read_text().split("\n")
    pinned = dict(reversed(line.split("  ")) for line in sums if line)
    assert len(pinned) == 50
    for name, digest in pinned.items():
        assert hashlib.sha256(load(name)).hexdigest() == digest, name
    assert load("variants/baddn.crlf-terminated.dat") == load("baddn.dat") + b"\r\n"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_datagram_outcome(row: Row) -> None:
    data = load(row.file)
    assert endpoint_outcome(data) == row.outcome
    if isinstance(row.check, str):
        with pytest.raises(MalformedMessage, match=row.check):
            parse_message(data)
    else:
        row.check(parse_message(data))


@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_stream_outcome(row: Row, chunk: int | None) -> None:
    data = load(row.file)
    if row.stream == "close":
        _, error = feed_until_failure(data, chunk)
        assert error is not None and error.close_connection and error.status == 400
        return
    if row.stream == "wait":
        assert feed(data, chunk) == []
        return
    if row.stream == "dblreq":
        # On a stream the bytes UDP ignores are messages of their own: the INVITE, whose body
        # is 2 octets longer than its Content-Length, then those 2 octets, which frame nothing.
        (register, invite), error = feed_until_failure(data, chunk)
        assert error is not None and error.close_connection
        assert "Content-Length is mandatory" in str(error)
        assert register == parse_message(data)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        assert invite.body.endswith(b"a=rtpmap:31 LP")
        return
    items = feed(data, chunk)
    (item,) = items
    if isinstance(row.check, str):
        assert isinstance(item, InvalidMessage)
        with pytest.raises(MalformedMessage) as raised:
            parse_message(data)
        assert (item.error.status, item.error.discard) == (raised.value.status, raised.value.discard)
        assert not item.error.close_connection
    else:
        assert item == parse_message(data)
        assert isinstance(item, Request | Response)
        row.check(item)


def test_rejections_carry_the_headers_of_the_offending_request() -> None:
    rejected = check_request(parse_message(load("bext01.dat")), **SERVER)
    assert rejected is not None
    assert rejected.headers.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"
    assert rejected.headers.get("Via") == "SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw"

    invut = check_request(parse_message(load("invut.dat")), **SERVER)
    assert invut is not None and invut.headers.get("Accept") == "application/sdp"

    sdp01 = check_request(parse_message(load("sdp01.dat")), **SERVER)
    assert sdp01 is not None and sdp01.headers.get("Warning") == (
        '399 smartalex "Only application/sdp answers are available"'
    )

    intmeth = check_request(parse_message(load("intmeth.dat")), **SERVER, to_tag="x1")
    assert intmeth is not None
    assert intmeth.headers.get("Allow") == "ACK, BYE, CANCEL, INVITE, NOTIFY, OPTIONS, REFER, REGISTER"
    assert intmeth.to.tag == "x1"
