"""Dialogs (RFC 3261 §12–§15), REFER transfers (RFC 3515) and Replaces (RFC 3891).

Messages are byte tables shaped like what a PBX sends, parsed by the real parser; what we
build is serialised and parsed back before it is checked.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

from telephony.sip.dialog import (
    Dialog,
    DialogId,
    DialogState,
    DialogTable,
    NoSuchDialog,
    OutOfOrderRequest,
    Replaces,
    parse_replaces,
)
from telephony.sip.errors import ParseError, PeerError
from telephony.sip.message import Request, Response, make_response
from telephony.sip.parser import parse_message
from telephony.sip.refer import (
    ReferProgress,
    accept_refer,
    answer_refer_notify,
    create_refer,
    create_refer_notify,
    parse_refer,
    parse_refer_notify,
)
from telephony.sip.transaction import make_via

CALL_ID = "3848276298220188511@pbx.example.com"
PBX_TAG, OUR_TAG = "9fxced76sl", "a6c85cf"
OUR_CONTACT = "<sip:alex@192.0.2.4:5060>"


def message(text: str, body: str = "") -> Request | Response:
    head = "\r\n".join(line.strip() for line in text.splitlines() if line.strip())
    data = f"{head}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    return parse_message(data)


def request_from(text: str, body: str = "") -> Request:
    parsed = message(text, body)
    assert isinstance(parsed, Request)
    return parsed


Message = TypeVar("Message", Request, Response)


def reparse(msg: Message) -> Message:
    """What the peer will read: our message serialised and parsed again."""
    parsed = parse_message(msg.to_bytes())
    assert isinstance(parsed, type(msg))
    return parsed


def pbx_request(method: str, cseq: int, *extra: str, body: str = "", to_tag: str | None = OUR_TAG) -> Request:
    """An in-dialog request from the PBX (its From tag, our To tag)."""
    to_param = "" if to_tag is None else f";tag={to_tag}"
    lines = "\n".join(extra)
    return request_from(
        f"""
        {method} sip:alex@192.0.2.4:5060 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{method.lower()}{cseq}
        Max-Forwards: 70
        From: "Thabo" <sip:+27115550100@pbx.example.com>;tag={PBX_TAG}
        To: <sip:alex@voice.example.com>{to_param}
        Call-ID: {CALL_ID}
        CSeq: {cseq} {method}
        {lines}
        """,
        body,
    )


INVITE = request_from(f"""
    INVITE sip:alex@192.0.2.4:5060 SIP/2.0
    Via: SIP/2.0/UDP proxy.pbx.example.com:5060;branch=z9hG4bK2d4790.1
    Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.10
    Max-Forwards: 69
    Record-Route: <sip:proxy.pbx.example.com;lr>
    Record-Route: <sip:edge.pbx.example.com;lr;transport=udp>
    From: "Thabo" <sip:+27115550100@pbx.example.com>;tag={PBX_TAG}
    To: <sip:alex@voice.example.com>
    Call-ID: {CALL_ID}
    CSeq: 101 INVITE
    Contact: <sip:+27115550100@192.0.2.10:5060;transport=udp>
""")


def uas_dialog() -> Dialog:
    ok = make_response(INVITE, 200, to_tag=OUR_TAG, headers=[("Contact", OUR_CONTACT)])
    return Dialog.for_uas(INVITE, reparse(ok))


def our_via() -> str:
    return str(make_via("UDP", "192.0.2.4", 5060))


# --- UAS dialogs and what we send in them -----------------------------------------------------------


def test_uas_dialog_from_an_invite_with_record_route():
    dialog = uas_dialog()
    assert dialog.id == DialogId(CALL_ID, OUR_TAG, PBX_TAG)
    assert dialog.state is DialogState.CONFIRMED and not dialog.is_uac
    assert str(dialog.remote_target) == "sip:+27115550100@192.0.2.10:5060;transport=udp"
    # §12.1.1: the UAS keeps Record-Route in order.
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:proxy.pbx.example.com;lr",
        "sip:edge.pbx.example.com;lr;transport=udp",
    ]
    assert dialog.remote_seq == 101
    assert str(dialog.local) == f"<sip:alex@voice.example.com>;tag={OUR_TAG}"


def test_in_dialog_bye_is_built_per_12_2_1_1():
    dialog = uas_dialog()
    via = our_via()
    bye = reparse(dialog.create_request("BYE", via=via))
    assert isinstance(bye, Request)
    assert bye.method == "BYE"
    assert str(bye.uri) == "sip:+27115550100@192.0.2.10:5060;transport=udp"  # loose routing
    assert bye.headers.get_all("Route") == (
        "<sip:proxy.pbx.example.com;lr>",
        "<sip:edge.pbx.example.com;lr;transport=udp>",
    )
    assert bye.headers.get_all("Via") == (via,)
    assert (bye.from_.uri, bye.from_.tag) == (INVITE.to.uri, OUR_TAG)
    assert (bye.to.uri, bye.to.tag, bye.to.display_name) == (INVITE.from_.uri, PBX_TAG, "Thabo")
    assert bye.call_id == CALL_ID
    assert (bye.cseq.number, bye.cseq.method) == (1, "BYE")
    assert bye.max_forwards == 70
    assert "Contact" not in bye.headers  # BYE refreshes no target
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.number == 2  # the local CSeq increments
    assert reinvite.headers.get("Contact") == OUR_CONTACT
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert "Via" not in reinvite.headers  # the I/O layer adds it (transaction.with_via)


def test_strict_router_becomes_the_request_uri():
    record_routes = (
        "Record-Route: <sip:strict.pbx.example.com;maddr=192.0.2.1>\r\n"
        "Record-Route: <sip:proxy.pbx.example.com;lr>\r\n"
    )
    data = INVITE.to_bytes().replace(b"Record-Route: <sip:proxy.pbx.example.com;lr>\r\n", b"")
    data = data.replace(
        b"Record-Route: <sip:edge.pbx.example.com;lr;transport=udp>\r\n", record_routes.encode()
    )
    invite = parse_message(data)
    assert isinstance(invite, Request)
    dialog = Dialog.for_uas(invite, make_response(invite, 200, to_tag=OUR_TAG))
    request = reparse(dialog.create_request("BYE", via=our_via()))
    assert str(request.uri) == "sip:strict.pbx.example.com;maddr=192.0.2.1"
    # The rest of the route set, then the remote target as the last Route (§12.2.1.1).
    assert request.headers.get_all("Route") == (
        "<sip:proxy.pbx.example.com;lr>",
        "<sip:+27115550100@192.0.2.10:5060;transport=udp>",
    )


def test_remote_cseq_must_go_up():
    dialog = uas_dialog()
    dialog.receive_request(pbx_request("ACK", 101))  # the ACK reuses the INVITE's CSeq
    dialog.receive_request(pbx_request("INFO", 102))
    assert dialog.remote_seq == 102
    for stale in (102, 90):
        with pytest.raises(OutOfOrderRequest) as caught:
            dialog.receive_request(pbx_request("INFO", stale))
        answer = make_response(pbx_request("INFO", stale), caught.value.status, caught.value.reason)
        assert answer.start_line == "SIP/2.0 500 Server Internal Error"
    assert dialog.remote_seq == 102


def test_reinvite_refreshes_the_remote_target_and_bye_ends_the_dialog():
    dialog = uas_dialog()
    dialog.receive_request(pbx_request("INVITE", 102, "Contact: <sip:+27115550100@192.0.2.99:5062>"))
    assert str(dialog.remote_target) == "sip:+27115550100@192.0.2.99:5062"
    dialog.receive_request(pbx_request("BYE", 103))
    assert dialog.terminated


def test_unknown_dialog_is_481():
    table = DialogTable()
    table.add(uas_dialog())
    assert table.match_request(pbx_request("BYE", 102)).id.local_tag == OUR_TAG
    for stray in (pbx_request("BYE", 102, to_tag="someone-else"), pbx_request("BYE", 102, to_tag=None)):
        with pytest.raises(NoSuchDialog) as caught:
            table.match_request(stray)
        assert make_response(stray, caught.value.status, caught.value.reason).status == 481


def test_uas_early_dialog_is_confirmed_by_our_2xx():
    ringing = make_response(INVITE, 180, to_tag=OUR_TAG, headers=[("Contact", OUR_CONTACT)])
    dialog = Dialog.for_uas(INVITE, ringing)
    assert dialog.early and dialog.id.local_tag == OUR_TAG
    dialog.confirm()
    assert dialog.state is DialogState.CONFIRMED


def test_dialog_needs_a_tagged_response_and_a_contact():
    with pytest.raises(ValueError):
        Dialog.for_uas(INVITE, make_response(INVITE, 100))
    no_contact = INVITE.__class__(INVITE.method, INVITE.uri, INVITE.headers.without("Contact"))
    with pytest.raises(PeerError) as caught:
        Dialog.for_uas(no_contact, make_response(no_contact, 200, to_tag=OUR_TAG))
    assert caught.value.status == 400


# --- UAC dialogs -----------------------------------------------------------------------------------

OUR_INVITE = request_from(f"""
    INVITE sip:101@pbx.example.com SIP/2.0
    Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKout1;rport
    Max-Forwards: 70
    From: <sip:alex@voice.example.com>;tag={OUR_TAG}
    To: <sip:101@pbx.example.com>
    Call-ID: out-1@192.0.2.4
    CSeq: 7 INVITE
    Contact: {OUR_CONTACT}
""")


def pbx_answer(status: str, *record_routes: str) -> Response:
    routes = "\n".join(f"Record-Route: {route}" for route in record_routes)
    response = message(f"""
        SIP/2.0 {status}
        Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKout1;rport=5060
        {routes}
        From: <sip:alex@voice.example.com>;tag={OUR_TAG}
        To: <sip:101@pbx.example.com>;tag=pbx-77
        Call-ID: out-1@192.0.2.4
        CSeq: 7 INVITE
        Contact: <sip:101@192.0.2.10:5060>
    """)
    assert isinstance(response, Response)
    return response


def test_uac_dialog_reverses_record_route_and_confirms_on_2xx():
    ringing = pbx_answer("180 Ringing", "<sip:a.example.com;lr>", "<sip:b.example.com;lr>")
    dialog = Dialog.for_uac(OUR_INVITE, ringing)
    assert dialog.early and dialog.is_uac
    assert dialog.id == DialogId("out-1@192.0.2.4", OUR_TAG, "pbx-77")
    assert [str(r.uri) for r in dialog.route_set] == ["sip:b.example.com;lr", "sip:a.example.com;lr"]
    assert dialog.local_seq == 7 and dialog.remote_seq is None
    table = DialogTable()
    table.add(dialog)
    ok = pbx_answer("200 OK", "<sip:c.example.com;lr>")
    assert table.match_response(ok) is dialog
    dialog.receive_response(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:c.example.com;lr"]  # §13.2.2.4


def test_2xx_to_our_reinvite_refreshes_the_remote_target():
    dialog = Dialog.for_uac(OUR_INVITE, pbx_answer("200 OK"))
    reinvite = dialog.create_request("INVITE")
    moved = pbx_answer("200 OK").headers.with_replaced("Contact", "<sip:101@192.0.2.11:5070>")
    moved = moved.with_replaced("CSeq", f"{reinvite.cseq.number} INVITE")
    dialog.receive_response(Response(200, "OK", moved))
    assert str(dialog.remote_target) == "sip:101@192.0.2.11:5070"
    dialog.receive_response(Response(486, "Busy Here", moved.with_replaced("Contact", "<sip:x@y>")))
    assert str(dialog.remote_target) == "sip:101@192.0.2.11:5070"  # only a 2xx refreshes


def test_ack_for_2xx_reuses_the_invite_cseq_and_a_new_branch():
    dialog = Dialog.for_uac(OUR_INVITE, pbx_answer("200 OK"))
    ack = reparse(dialog.create_ack(7, via=make_via("UDP", "192.0.2.4", 5060)))
    assert (ack.method, str(ack.uri)) == ("ACK", "sip:101@192.0.2.10:5060")
    assert (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert ack.top_via.branch != OUR_INVITE.top_via.branch
    assert dialog.local_seq == 7
    assert dialog.create_request("BYE").cseq.number == 8
    with pytest.raises(ValueError):
        dialog.create_request("ACK")


def test_both_ends_of_one_dialog_mirror_each_other():
    ok = reparse(make_response(INVITE, 200, to_tag=OUR_TAG, headers=[("Contact", OUR_CONTACT)]))
    uas = Dialog.for_uas(INVITE, ok)
    uac = Dialog.for_uac(INVITE, ok)  # as the PBX sees it
    assert (uac.id.local_tag, uac.id.remote_tag) == (uas.id.remote_tag, uas.id.local_tag)
    table = DialogTable()
    table.add(uas)
    info = reparse(uac.create_request("INFO", via="SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKinfo"))
    assert table.match_request(info) is uas
    uas.receive_request(info)
    assert uas.remote_seq == 102


# --- REFER: we transfer the caller -------------------------------------------------------------------


def notify(cseq: int, subscription_state: str, sipfrag: str, *, event: str = "refer") -> Request:
    return pbx_request(
        "NOTIFY",
        cseq,
        f"Event: {event}",
        f"Subscription-State: {subscription_state}",
        "Content-Type: message/sipfrag;version=2.0",
        body=sipfrag,
    )


def test_refer_carries_target_referrer_and_asserted_identity():
    dialog = uas_dialog()
    pai = '"Thabo" <sip:+27115550100@pbx.example.com>'
    refer = reparse(create_refer(dialog, "sip:101@pbx.example.com", asserted_identity=pai, via=our_via()))
    assert isinstance(refer, Request) and refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:101@pbx.example.com>"
    assert refer.headers.get("Referred-By") == "<sip:alex@voice.example.com>"
    assert refer.headers.get("P-Asserted-Identity") == pai
    assert refer.headers.get("Contact") == OUR_CONTACT
    assert str(refer.uri) == str(dialog.remote_target) and refer.to.tag == PBX_TAG
    assert len(refer.headers.get_all("Route")) == 2
    accepted = make_response(refer, 202)
    assert accepted.start_line == "SIP/2.0 202 Accepted"


@pytest.mark.parametrize(
    ("state", "frag", "expected"),
    [
        ("active;expires=60", "SIP/2.0 100 Trying\r\n", ReferProgress(100, "Trying", False)),
        ("active;expires=59", "SIP/2.0 180 Ringing\r\n", ReferProgress(180, "Ringing", False)),
        (
            "terminated;reason=noresource",
            "SIP/2.0 200 OK\r\n",
            ReferProgress(200, "OK", True, "noresource"),
        ),
        (
            "terminated;reason=noresource",
            "SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n",
            ReferProgress(486, "Busy Here", True, "noresource"),
        ),
        ("terminated", "SIP/2.0 603 Decline", ReferProgress(603, "Decline", True)),
    ],
)
def test_refer_notify_progress_is_parsed(state, frag, expected):
    progress, answer = answer_refer_notify(notify(102, state, frag))
    assert progress == expected
    assert answer.status == 200 and answer.to.tag == OUR_TAG
    assert progress.succeeded == (expected.status == 200)
    assert progress.failed == (expected.status >= 300)
    assert progress.final == (expected.status >= 200)


def test_a_transfer_reported_notify_by_notify():
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    reports = []
    for cseq, state, frag in [
        (102, "active;expires=60", "SIP/2.0 100 Trying\r\n"),
        (103, "active;expires=60", "SIP/2.0 180 Ringing\r\n"),
        (104, "terminated;reason=noresource", "SIP/2.0 200 OK\r\n"),
    ]:
        request = notify(cseq, state, frag)
        matched = table.match_request(request)
        matched.receive_request(request)
        reports.append(parse_refer_notify(request))
    assert [(r.status, r.terminated) for r in reports] == [(100, False), (180, False), (200, True)]
    assert reports[-1].succeeded and dialog.remote_seq == 104


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (notify(102, "active", "SIP/2.0 100 Trying", event="dialog"), 489),
        (notify(102, "active", "this is not a status line"), 400),
        (pbx_request("NOTIFY", 102, "Event: refer", body="SIP/2.0 200 OK"), 400),  # no Subscription-State
        (
            pbx_request(
                "NOTIFY",
                102,
                "Event: refer",
                "Subscription-State: active",
                "Content-Type: text/plain",
                body="SIP/2.0 200 OK",
            ),
            415,
        ),
    ],
)
def test_unreadable_notify_is_answered_with_an_error(request_, status):
    progress, answer = answer_refer_notify(request_)
    assert progress is None and answer.status == status


# --- REFER: a PBX transfers us ---------------------------------------------------------------------


def test_incoming_refer_with_replaces_is_accepted_and_reported():
    dialog = uas_dialog()
    refer = pbx_request(
        "REFER",
        102,
        "Refer-To: <sip:bob@pbx.example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>",
        "Referred-By: <sip:+27115550100@pbx.example.com>",
        "Contact: <sip:+27115550100@192.0.2.10:5060>",
    )
    dialog.receive_request(refer)
    read = parse_refer(refer)
    assert str(read.refer_to.uri).startswith("sip:bob@pbx.example.com")
    assert read.replaces == Replaces("12345@192.168.118.3", "12345", "5FFE-3994")
    assert str(read.referred_by.uri) == "sip:+27115550100@pbx.example.com"
    assert accept_refer(refer).start_line == "SIP/2.0 202 Accepted"

    trying = reparse(create_refer_notify(dialog, 100, event_id=102, via=our_via()))
    assert trying.headers.get("Event") == "refer;id=102"
    assert trying.headers.get("Subscription-State") == "active;expires=60"
    assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    assert trying.headers.get("Contact") == OUR_CONTACT
    assert parse_refer_notify(trying) == ReferProgress(100, "Trying", False, event_id="102")
    done = reparse(create_refer_notify(dialog, 200, via=our_via()))
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert parse_refer_notify(done) == ReferProgress(200, "OK", True, "noresource")
    assert done.cseq.number == trying.cseq.number + 1


def test_refer_needs_exactly_one_refer_to():
    with pytest.raises(PeerError) as caught:
        parse_refer(pbx_request("REFER", 102))
    assert caught.value.status == 400


# --- Replaces (RFC 3891) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff",
            Replaces("98732@sip.example.com", "ff87ff", "r33th4x0r"),
        ),
        ("abc;to-tag=1 ; from-tag=2;early-only", Replaces("abc", "1", "2", early_only=True)),
        ("abc;to-tag=1;from-tag=2;x-other=3", Replaces("abc", "1", "2")),
    ],
)
def test_replaces_is_parsed(text, expected):
    assert parse_replaces(text) == expected
    assert parse_replaces(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "abc;to-tag=1", ";to-tag=1;from-tag=2", "abc;;to-tag=1;from-tag=2"]
)
def test_malformed_replaces_is_400(text):
    with pytest.raises(ParseError):
        parse_replaces(text)


def test_attended_transfer_refer_embeds_the_replaces_of_the_consultation_dialog():
    caller, consultation = uas_dialog(), Dialog.for_uac(OUR_INVITE, pbx_answer("200 OK"))
    replaces = Replaces.naming(consultation)
    assert (replaces.to_tag, replaces.from_tag) == ("pbx-77", OUR_TAG)  # as the PBX sees it
    refer = reparse(create_refer(caller, "sip:101@pbx.example.com", replaces=replaces, via=our_via()))
    assert "?Replaces=out-1%40192.0.2.4%3Bto-tag%3Dpbx-77%3Bfrom-tag%3Da6c85cf" in refer.headers.get(
        "Refer-To"
    )
    assert parse_refer(refer).replaces == replaces


def replacing_invite(replaces: str, *, method: str = "INVITE", count: int = 1) -> Request:
    lines = [f"Replaces: {replaces}"] * count + ["Contact: <sip:carol@192.0.2.77>"]
    return request_from(
        f"""
        {method} sip:alex@192.0.2.4 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.77;branch=z9hG4bKrepl
        From: <sip:carol@pbx.example.com>;tag=carol1
        To: <sip:alex@voice.example.com>
        Call-ID: new-call@192.0.2.77
        CSeq: 1 {method}
        """
        + "\n".join(lines)
    )


def test_replaces_finds_the_dialog_it_names():
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    # to-tag is compared with our local tag, from-tag with the remote one (RFC 3891 §3).
    found = table.resolve_replaces(replacing_invite(f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}"))
    assert found is dialog
    assert (
        table.resolve_replaces(replacing_invite(f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}", count=0))
        is None
    )


@pytest.mark.parametrize(
    ("setup", "replaces", "kwargs", "status"),
    [
        ("confirmed", f"{CALL_ID};to-tag={PBX_TAG};from-tag={OUR_TAG}", {}, 481),  # tags swapped
        ("confirmed", f"other@x;to-tag={OUR_TAG};from-tag={PBX_TAG}", {}, 481),
        ("confirmed", f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG};early-only", {}, 486),
        ("terminated", f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}", {}, 603),
        (
            "early",
            f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}",
            {},
            481,
        ),  # an early dialog we did not start
        ("confirmed", f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}", {"count": 2}, 400),
        ("confirmed", f"{CALL_ID};to-tag={OUR_TAG};from-tag={PBX_TAG}", {"method": "OPTIONS"}, 400),
    ],
)
def test_replaces_rejections_follow_rfc_3891(setup, replaces, kwargs, status):
    table = DialogTable()
    dialog = uas_dialog()
    if setup == "terminated":
        dialog.terminate()
    elif setup == "early":
        dialog.state = DialogState.EARLY
    table.add(dialog)
    with pytest.raises(PeerError) as caught:
        table.resolve_replaces(replacing_invite(replaces, **kwargs))
    assert caught.value.status == status


def test_table_add_get_remove():
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    with pytest.raises(ValueError):
        table.add(uas_dialog())
    assert table.get(dialog.id) is dialog and dialog.id in table and len(table) == 1
    assert list(table) == [dialog]
    table.remove(dialog)
    assert len(table) == 0 and table.get(dialog.id) is None
