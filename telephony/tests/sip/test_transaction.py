"""Transactions (RFC 3261 §17, RFC 6026) over simulated time, alone and wired back to back.

No sockets and no clock: time is a number we pass in, and the "network" between a client
layer and a server layer is a heap of datagrams that can be dropped, duplicated and reordered.
Every message crosses it as bytes and goes through the real parser.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.sip.dialog import Dialog
from telephony.sip.message import Request, Response, make_response
from telephony.sip.parser import parse_message
from telephony.sip.timers import TimerSettings
from telephony.sip.transaction import (
    AckReceived,
    Action,
    CancelReceived,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    State,
    StrayResponse,
    Terminated,
    TerminationReason,
    Timeout,
    Transaction,
    TransportError,
    make_cancel,
    make_via,
    with_via,
)
from telephony.sip.transaction_layer import TransactionLayer

T1, T2, T4 = 0.5, 4.0, 5.0


# --- messages ---------------------------------------------------------------------------------


def request(
    method: str,
    *,
    branch: str | None = "z9hG4bK74bf9",
    sent_by: str = "192.0.2.10:5060",
    call_id: str = "3848276298220188511@192.0.2.10",
    cseq: int = 1,
    to_tag: str | None = None,
    from_tag: str = "9fxced76sl",
    uri: str = "sip:alex@voice.example.com",
    transport: str = "UDP",
) -> Request:
    """A request as a PBX would send it, parsed from bytes by the real parser."""
    branch_param = "" if branch is None else f";branch={branch}"
    to_param = "" if to_tag is None else f";tag={to_tag}"
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {sent_by}{branch_param}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:+27115550100@pbx.example.com>;tag={from_tag}\r\n"
        f"To: <sip:alex@voice.example.com>{to_param}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:+27115550100@192.0.2.10:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def reparse(message: Request | Response) -> Request | Response:
    return parse_message(message.to_bytes())


def response_to(req: Request, status: int, *, to_tag: str | None = "as83kd9bs") -> Response:
    return make_response(req, status, to_tag=to_tag if status > 100 else None)


def sends(actions: list[Action]) -> list[Send]:
    return [action for action in actions if isinstance(action, Send)]


def statuses(actions: list[Action]) -> list[int]:
    """The status of each response sent, read from the bytes that go on the wire."""
    on_wire = [parse_message(send.data) for send in sends(actions)]
    return [message.status for message in on_wire if isinstance(message, Response)]


def run_timers(transaction: Transaction, until: float) -> list[tuple[float, Action]]:
    """Wake `transaction` at each of its deadlines up to `until`; what it did, and when."""
    log: list[tuple[float, Action]] = []
    while (deadline := transaction.next_deadline()) is not None and deadline <= until:
        log += [(deadline, action) for action in transaction.handle_timeout(deadline)]
    return log


def send_times(log: list[tuple[float, Action]]) -> list[float]:
    return [round(at, 6) for at, action in log if isinstance(action, Send)]


def server(
    req: Request, *, reliable: bool = False, timers: TimerSettings | None = None
) -> tuple[InviteServerTransaction | NonInviteServerTransaction, list[Action]]:
    kind = InviteServerTransaction if req.method == "INVITE" else NonInviteServerTransaction
    transaction = kind(req, "key", "pbx", reliable=reliable, settings=timers or TimerSettings())
    return transaction, transaction.start(0.0)


def client(
    req: Request, *, reliable: bool = False
) -> tuple[InviteClientTransaction | NonInviteClientTransaction, list[Action]]:
    kind = InviteClientTransaction if req.method == "INVITE" else NonInviteClientTransaction
    transaction = kind(req, "pbx", reliable=reliable)
    return transaction, transaction.start(0.0)


# --- INVITE server transaction (§17.2.1) ---------------------------------------------------------


def test_invite_server_sends_no_trying_when_the_tu_answers_within_200_ms():
    invite = request("INVITE")
    tx, actions = server(invite)
    assert actions == [] and tx.state is State.PROCEEDING
    assert tx.next_deadline() == pytest.approx(0.2)
    assert statuses(tx.respond(response_to(invite, 180), 0.1)) == [180]
    assert run_timers(tx, 10.0) == []  # the 100 Trying timer was cancelled


def test_invite_server_sends_trying_when_the_tu_is_slow():
    invite = request("INVITE")
    tx, _ = server(invite)
    log = run_timers(tx, 10.0)
    assert [(at, action.message.status) for at, action in log] == [(0.2, 100)]
    trying = log[0][1].message
    assert trying.to.tag is None  # §17.2.1: a 100 SHOULD NOT add a To tag
    assert trying.headers.get("Via") == invite.headers.get("Via")


def test_invite_server_can_send_trying_immediately():
    tx, actions = server(request("INVITE"), timers=TimerSettings(trying_delay=0))
    assert statuses(actions) == [100]
    assert tx.next_deadline() is None


def test_retransmitted_invite_is_answered_with_the_latest_provisional():
    invite = request("INVITE")
    tx, _ = server(invite)
    # Before the TU said anything, a retransmission gets 100 Trying at once.
    assert statuses(tx.receive_request(invite, 0.05)) == [100]
    tx.respond(response_to(invite, 180), 0.1)
    again = tx.receive_request(invite, 0.6)
    assert statuses(again) == [180]
    assert again[0].data == tx.last_response.to_bytes()


def test_invite_server_retransmits_a_failure_per_timer_g_until_the_ack():
    invite = request("INVITE")
    tx, _ = server(invite)
    assert statuses(tx.respond(response_to(invite, 486), 0.0)) == [486]
    assert tx.state is State.COMPLETED
    log = run_timers(tx, 8.0)
    # G: T1, 2T1, 4T1, then capped at T2 (4 s).
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5]
    assert {action.message.status for _, action in log} == {486}
    ack = request("ACK", to_tag="as83kd9bs")
    assert tx.receive_request(ack, 8.0) == []  # absorbed: the TU never sees it
    assert tx.state is State.CONFIRMED
    assert tx.receive_request(ack, 9.0) == []  # retransmitted ACK: absorbed too
    assert tx.receive_request(invite, 9.5) == []
    assert tx.next_deadline() == pytest.approx(8.0 + T4)  # Timer I
    ((_, ended),) = run_timers(tx, 20.0)
    assert ended == Terminated(tx, TerminationReason.NORMAL) and tx.terminated


def test_invite_server_without_ack_times_out_on_timer_h():
    invite = request("INVITE")
    tx, _ = server(invite)
    tx.respond(response_to(invite, 603), 0.0)
    log = run_timers(tx, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [action for _, action in log if not isinstance(action, Send)] == [
        Timeout(tx),
        Terminated(tx, TerminationReason.TIMEOUT),
    ]
    assert log[-1][0] == pytest.approx(64 * T1)  # Timer H


def test_invite_server_2xx_enters_accepted_and_retransmits_until_the_ack():
    invite = request("INVITE")
    tx, _ = server(invite)
    assert statuses(tx.respond(response_to(invite, 200), 0.0)) == [200]
    assert tx.state is State.ACCEPTED
    assert tx.receive_request(invite, 0.3) == []  # RFC 6026: absorbed, not passed to the TU
    log = run_timers(tx, 4.0)
    assert send_times(log) == [0.5, 1.5, 3.5]  # §13.3.1.4: T1 doubling up to T2
    assert tx.acknowledge_2xx() is True
    assert tx.acknowledge_2xx() is False
    log = run_timers(tx, 100.0)
    assert [action for _, action in log] == [Terminated(tx, TerminationReason.NORMAL)]
    assert log[0][0] == pytest.approx(64 * T1)  # Timer L


def test_invite_server_2xx_never_acknowledged_is_a_timeout():
    invite = request("INVITE")
    tx, _ = server(invite)
    tx.respond(response_to(invite, 200), 0.0)
    log = run_timers(tx, 100.0)
    assert send_times(log)[-1] < 64 * T1
    assert [action for _, action in log if not isinstance(action, Send)] == [
        Timeout(tx),
        Terminated(tx, TerminationReason.TIMEOUT),
    ]


def test_invite_server_accepted_passes_tu_2xx_retransmissions_and_drops_others():
    invite = request("INVITE")
    tx, _ = server(invite)
    ok = response_to(invite, 200)
    tx.respond(ok, 0.0)
    assert statuses(tx.respond(ok, 0.4)) == [200]
    assert tx.respond(response_to(invite, 486), 0.5) == []


def test_invite_server_over_tcp_does_not_retransmit_failures_and_ends_at_the_ack():
    invite = request("INVITE", transport="TCP")
    tx, _ = server(invite, reliable=True)
    tx.respond(response_to(invite, 486), 0.0)
    assert tx.next_deadline() == pytest.approx(64 * T1)  # only Timer H
    assert tx.receive_request(request("ACK", transport="TCP", to_tag="as83kd9bs"), 1.0) == [
        Terminated(tx, TerminationReason.NORMAL)  # Timer I is 0
    ]


def test_invite_server_over_tcp_still_retransmits_2xx_end_to_end():
    # §13.3.1.4: 2xx retransmission is the UAS core's, end to end: a UDP hop may follow.
    invite = request("INVITE", transport="TCP")
    tx, _ = server(invite, reliable=True)
    tx.respond(response_to(invite, 200), 0.0)
    assert send_times(run_timers(tx, 2.0)) == [0.5, 1.5]


def test_responses_after_the_end_are_discarded():
    invite = request("INVITE")
    tx, _ = server(invite)
    tx.respond(response_to(invite, 486), 0.0)
    assert tx.respond(response_to(invite, 200), 0.1) == []
    assert tx.respond(response_to(invite, 180), 0.1) == []


# --- non-INVITE server transaction (§17.2.2) -----------------------------------------------------


def test_non_invite_server_resends_the_same_response_to_retransmissions_until_timer_j():
    register = request("REGISTER", uri="sip:voice.example.com")
    tx, actions = server(register)
    assert actions == [] and tx.state is State.TRYING
    assert tx.receive_request(register, 0.1) == []  # Trying: absorbed, the TU is working
    ok = tx.respond(response_to(register, 200), 0.2)
    assert statuses(ok) == [200] and tx.state is State.COMPLETED
    assert tx.request is None  # freed: only the response bytes wait out Timer J
    (again,) = tx.receive_request(register, 0.7)
    assert again.data == ok[0].data and again.destination == "pbx"  # the very same bytes
    assert again.message is None  # only the bytes were kept for Timer J
    assert tx.respond(response_to(register, 500), 0.8) == []
    log = run_timers(tx, 100.0)
    assert log == [(pytest.approx(0.2 + 64 * T1), Terminated(tx, TerminationReason.NORMAL))]


def test_non_invite_server_resends_the_provisional_while_proceeding():
    options = request("OPTIONS")
    tx, _ = server(options)
    tx.respond(response_to(options, 100), 0.0)
    assert tx.state is State.PROCEEDING
    assert statuses(tx.receive_request(options, 0.5)) == [100]


def test_non_invite_server_over_tcp_ends_with_its_final_response():
    bye = request("BYE", transport="TCP", to_tag="as83kd9bs")
    tx, _ = server(bye, reliable=True)
    actions = tx.respond(response_to(bye, 200), 0.0)
    assert statuses(actions) == [200]
    assert actions[-1] == Terminated(tx, TerminationReason.NORMAL)  # Timer J is 0


def test_non_invite_server_whose_tu_never_answers_is_abandoned():
    tx, _ = server(request("OPTIONS"))
    assert run_timers(tx, 100.0) == [(64 * T1, Terminated(tx, TerminationReason.ABANDONED))]


# --- INVITE client transaction (§17.1.1) -------------------------------------------------------


def outgoing(method: str, *, branch: str | None = "z9hG4bK74bf9", **kwargs: str) -> Request:
    return request(method, branch=branch, sent_by="198.51.100.7:5060", **kwargs)


def test_invite_client_retransmits_per_timer_a_and_times_out_on_timer_b():
    tx, actions = client(outgoing("INVITE"))
    assert len(sends(actions)) == 1 and tx.state is State.CALLING
    log = run_timers(tx, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A doubles without a cap
    assert [a for _, a in log if not isinstance(a, Send)] == [
        Timeout(tx),
        Terminated(tx, TerminationReason.TIMEOUT),
    ]
    assert log[-1][0] == pytest.approx(64 * T1)


def test_provisional_stops_timer_a_and_timer_b():
    invite = outgoing("INVITE")
    tx, _ = client(invite)
    run_timers(tx, 0.6)
    ringing = reparse(response_to(invite, 180))
    assert tx.receive_response(ringing, 0.7) == [ResponseReceived(ringing, tx)]
    assert tx.state is State.PROCEEDING
    assert tx.next_deadline() == pytest.approx(0.7 + 180.0)  # only the Timer C guard is left
    tx.receive_response(ringing, 60.0)  # each provisional restarts it
    log = run_timers(tx, 1000.0)
    assert log == [
        (pytest.approx(240.0), Timeout(tx)),
        (pytest.approx(240.0), Terminated(tx, TerminationReason.TIMEOUT)),
    ]


def test_invite_client_acknowledges_a_failure_itself():
    invite = outgoing("INVITE", uri="sip:101@pbx.example.com")
    tx, _ = client(invite)
    busy = reparse(response_to(invite, 486))
    actions = tx.receive_response(busy, 0.1)
    (ack_send,) = sends(actions)
    assert actions[1] == ResponseReceived(busy, tx)
    ack = reparse(ack_send.message)
    # §17.1.1.3: same branch, Request-URI, Call-ID, From; To with the response's tag; CSeq ACK.
    assert ack.method == "ACK" and str(ack.uri) == "sip:101@pbx.example.com"
    assert ack.top_via.branch == invite.top_via.branch and len(ack.vias) == 1
    assert ack.to.tag == "as83kd9bs" and ack.from_.tag == invite.from_.tag
    assert (ack.cseq.number, ack.cseq.method) == (invite.cseq.number, "ACK")
    assert ack.call_id == invite.call_id and ack.body == b""
    assert tx.state is State.COMPLETED
    # A retransmitted failure gets the same ACK again and is not passed up twice.
    assert tx.receive_response(busy, 0.6) == [ack_send]
    log = run_timers(tx, 100.0)
    assert log == [(pytest.approx(0.1 + 32.0), Terminated(tx, TerminationReason.NORMAL))]  # Timer D


def test_invite_client_passes_up_every_2xx_while_accepted():
    invite = outgoing("INVITE")
    tx, _ = client(invite)
    ok = reparse(response_to(invite, 200))
    assert tx.receive_response(ok, 0.2) == [ResponseReceived(ok, tx)]
    assert tx.state is State.ACCEPTED
    assert tx.receive_response(ok, 0.7) == [ResponseReceived(ok, tx)]  # the TU re-sends its ACK
    assert tx.receive_response(reparse(response_to(invite, 486)), 0.8) == []
    assert run_timers(tx, 100.0) == [(pytest.approx(0.2 + 64 * T1), Terminated(tx, TerminationReason.NORMAL))]


def test_invite_client_over_tcp_does_not_retransmit():
    invite = outgoing("INVITE", transport="TCP")
    tx, _ = client(invite, reliable=True)
    assert tx.next_deadline() == pytest.approx(64 * T1)  # Timer B only
    actions = tx.receive_response(reparse(response_to(invite, 404)), 1.0)
    assert actions[-1] == Terminated(tx, TerminationReason.NORMAL)  # Timer D is 0


# --- non-INVITE client transaction (§17.1.2) ---------------------------------------------------


def test_non_invite_client_retransmits_per_timer_e_capped_at_t2_and_times_out_on_f():
    tx, _ = client(outgoing("REGISTER"))
    log = run_timers(tx, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [a for _, a in log if not isinstance(a, Send)] == [
        Timeout(tx),
        Terminated(tx, TerminationReason.TIMEOUT),
    ]


def test_non_invite_client_retransmits_every_t2_once_proceeding():
    register = outgoing("REGISTER")
    tx, _ = client(register)
    run_timers(tx, 0.5)  # one retransmission, E now 1 s: next at 1.5
    trying = reparse(response_to(register, 100))
    assert tx.receive_response(trying, 0.6) == [ResponseReceived(trying, tx)]
    assert send_times(run_timers(tx, 10.0)) == [1.5, 5.5, 9.5]


def test_non_invite_client_completes_absorbs_retransmissions_and_ends_on_timer_k():
    register = outgoing("REGISTER")
    tx, _ = client(register)
    ok = reparse(response_to(register, 200))
    assert tx.receive_response(ok, 0.1) == [ResponseReceived(ok, tx)]
    assert tx.receive_response(ok, 0.2) == []
    assert run_timers(tx, 100.0) == [(pytest.approx(0.1 + T4), Terminated(tx, TerminationReason.NORMAL))]


def test_non_invite_client_over_tcp_does_not_retransmit():
    register = outgoing("REGISTER", transport="TCP")
    tx, _ = client(register, reliable=True)
    log = run_timers(tx, 100.0)
    assert send_times(log) == []
    assert [a for _, a in log][0] == Timeout(tx)
    tx2, _ = client(outgoing("REGISTER", transport="TCP", branch="z9hG4bKother"), reliable=True)
    done = tx2.receive_response(reparse(response_to(register, 200)), 1.0)
    assert done[-1] == Terminated(tx2, TerminationReason.NORMAL)  # Timer K is 0


def test_timers_scale_with_t1():
    slow = NonInviteClientTransaction(outgoing("OPTIONS"), "pbx", settings=TimerSettings(t1=1.0, t2=8.0))
    slow.start(0.0)
    log = run_timers(slow, 100.0)
    assert send_times(log)[:5] == [1.0, 3.0, 7.0, 15.0, 23.0]  # E: T1, 2T1, 4T1, then T2 = 8
    assert log[-1] == (64.0, Terminated(slow, TerminationReason.TIMEOUT))  # F = 64*T1


# --- the layer: matching (§17.2.3, §17.1.3) --------------------------------------------------------


def events(actions: list[Action], kind: type) -> list:
    return [action for action in actions if isinstance(action, kind)]


def test_retransmitted_request_never_creates_a_second_transaction():
    layer = TransactionLayer()
    register = request("REGISTER")
    (received,) = events(layer.receive(register, "pbx", 0.0), RequestReceived)
    ok = layer.respond(received.transaction, response_to(register, 200), 0.1)
    for at in (0.5, 1.5, 3.5):
        (again,) = layer.receive(reparse(register), "pbx", at)
        assert isinstance(again, Send) and again.data == sends(ok)[0].data
    assert len(layer) == 1


@pytest.mark.parametrize("branch", [None, "z9hG4bK", "1234-2543-style"])
def test_rfc2543_matching_for_requests_without_an_rfc3261_branch(branch):
    # RFC 4475 badbranch: a branch of exactly the magic cookie identifies nothing.
    layer = TransactionLayer()
    invite = request("INVITE", branch=branch)
    (received,) = events(layer.receive(invite, "pbx", 0.0), RequestReceived)
    layer.respond(received.transaction, response_to(invite, 486), 0.0)
    assert statuses(layer.receive(reparse(invite), "pbx", 0.2)) == [486]
    other_call = request("INVITE", branch=branch, call_id="another@192.0.2.10")
    assert len(events(layer.receive(other_call, "pbx", 0.3), RequestReceived)) == 1
    assert len(layer) == 2
    ack = request("ACK", branch=branch, to_tag="as83kd9bs")
    assert layer.receive(ack, "pbx", 0.4) == []  # absorbed by the INVITE transaction
    assert received.transaction.state is State.CONFIRMED


def test_same_branch_from_another_sent_by_is_another_transaction():
    layer = TransactionLayer()
    layer.receive(request("OPTIONS"), "a", 0.0)
    actions = layer.receive(request("OPTIONS", sent_by="203.0.113.9:5060"), "b", 0.0)
    assert len(events(actions, RequestReceived)) == 1 and len(layer) == 2


def test_ack_for_2xx_goes_to_the_tu_once_and_stops_2xx_retransmission():
    layer = TransactionLayer()
    invite = request("INVITE")
    (received,) = events(layer.receive(invite, "pbx", 0.0), RequestReceived)
    tx = received.transaction
    layer.respond(tx, response_to(invite, 200), 0.0)
    assert statuses(layer.handle_timeout(0.5)) == [200]
    ack = request("ACK", branch="z9hG4bKnewbranch", to_tag="as83kd9bs")  # its own transaction
    assert layer.receive(ack, "pbx", 0.6) == [AckReceived(ack, "pbx", tx)]
    assert layer.receive(reparse(ack), "pbx", 0.7) == []  # the ACK retransmitted
    assert layer.handle_timeout(20.0) == []  # no more 2xx retransmissions
    assert layer.handle_timeout(64 * T1) == [Terminated(tx, TerminationReason.NORMAL)]
    assert len(layer) == 0
    late = layer.receive(reparse(ack), "pbx", 40.0)
    assert late == [AckReceived(late[0].request, "pbx", None)]  # nobody knows it: still the TU's


def test_cancel_gets_its_own_transaction_and_names_the_invite():
    layer = TransactionLayer()
    invite = request("INVITE")
    (received,) = events(layer.receive(invite, "pbx", 0.0), RequestReceived)
    layer.respond(received.transaction, response_to(invite, 180), 0.0)
    cancel = make_cancel(invite)  # what the PBX would send: same branch, CSeq CANCEL
    (cancelled,) = layer.receive(reparse(cancel), "pbx", 1.0)
    assert isinstance(cancelled, CancelReceived)
    assert cancelled.invite is received.transaction
    assert cancelled.transaction is not received.transaction and len(layer) == 2
    # What the TU does with it (§9.2): 200 to the CANCEL, 487 to the INVITE.
    assert statuses(layer.respond(cancelled.transaction, response_to(cancelled.request, 200), 1.0)) == [200]
    assert statuses(layer.respond(cancelled.invite, response_to(invite, 487), 1.0)) == [487]
    assert statuses(layer.receive(reparse(cancel), "pbx", 1.5)) == [200]  # CANCEL retransmitted


@pytest.mark.parametrize("branch", [None, "z9hG4bK"])
def test_cancel_finds_an_rfc2543_invite(branch):
    layer = TransactionLayer()
    invite = request("INVITE", branch=branch)
    (received,) = events(layer.receive(invite, "pbx", 0.0), RequestReceived)
    (cancelled,) = layer.receive(reparse(make_cancel(invite)), "pbx", 0.5)
    assert isinstance(cancelled, CancelReceived) and cancelled.invite is received.transaction


def test_cancel_for_an_unknown_invite_names_none():
    layer = TransactionLayer()
    (cancelled,) = layer.receive(reparse(make_cancel(request("INVITE"))), "pbx", 0.0)
    assert isinstance(cancelled, CancelReceived) and cancelled.invite is None


def test_stray_responses_are_reported_not_matched():
    layer = TransactionLayer()
    register = with_via(outgoing("REGISTER", branch=None), make_via("UDP", "198.51.100.7", 5060))
    layer.send_request(register, "pbx", 0.0)
    # Same branch, other method: a response to another transaction (§17.1.3).
    wrong_method = reparse(response_to(register, 200)).headers.with_replaced("CSeq", "1 OPTIONS")
    stray = Response(200, "OK", wrong_method)
    assert layer.receive(stray, "pbx", 0.1) == [StrayResponse(stray, "pbx")]


def test_client_layer_matches_responses_and_builds_the_ack_for_failures():
    layer = TransactionLayer()
    invite = with_via(outgoing("INVITE", branch=None), make_via("UDP", "198.51.100.7", 5060))
    tx, actions = layer.send_request(invite, "pbx", 0.0)
    assert sends(actions)[0].data == invite.to_bytes()
    assert invite.top_via.rport_requested and invite.top_via.has_rfc3261_branch
    busy = reparse(response_to(invite, 486))
    actions = layer.receive(busy, "pbx", 0.1)
    assert [type(a) for a in actions] == [Send, ResponseReceived]
    assert actions[0].message.method == "ACK"
    with pytest.raises(ValueError):
        layer.send_request(invite, "pbx", 0.2)  # the branch is still in use (Timer D)
    with pytest.raises(ValueError):
        layer.send_request(request("ACK"), "pbx", 0.2)


def test_transport_error_ends_the_transaction_and_tells_the_tu():
    layer = TransactionLayer()
    tx, _ = layer.send_request(outgoing("OPTIONS", branch="z9hG4bKtcpfail"), "pbx", 0.0, reliable=True)
    assert layer.transport_error(tx, 0.1) == [
        TransportError(tx),
        Terminated(tx, TerminationReason.TRANSPORT_ERROR),
    ]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_a_full_table_answers_503_without_creating_state():
    layer = TransactionLayer(max_transactions=2)
    layer.receive(request("OPTIONS", branch="z9hG4bK1"), "pbx", 0.0)
    layer.receive(request("OPTIONS", branch="z9hG4bK2"), "pbx", 0.0)
    (refusal,) = layer.receive(request("OPTIONS", branch="z9hG4bK3"), "pbx", 0.0)
    assert isinstance(refusal, Send) and refusal.message.status == 503
    assert refusal.message.headers.get("Retry-After") == "5"
    assert layer.receive(request("ACK", branch="z9hG4bK4"), "pbx", 0.0)[0].invite is None
    assert len(layer) == 2


def test_layer_deadline_is_the_earliest_of_thousands_and_timeouts_fire_in_order():
    layer = TransactionLayer()
    for n in range(3000):
        register = request("REGISTER", branch=f"z9hG4bK{n}", call_id=f"{n}@192.0.2.10")
        (received,) = events(layer.receive(register, "pbx", n / 1000), RequestReceived)
        layer.respond(received.transaction, response_to(register, 200), n / 1000)
    assert len(layer) == 3000
    assert layer.next_deadline() == pytest.approx(64 * T1)  # the first Timer J
    ended = layer.handle_timeout(64 * T1 + 1.0)
    assert len(ended) == 1001 and all(isinstance(a, Terminated) for a in ended)
    assert len(layer) == 1999
    assert layer.next_deadline() == pytest.approx(64 * T1 + 1.001)
    layer.handle_timeout(1000.0)
    assert len(layer) == 0 and layer.next_deadline() is None


def test_cancelling_before_any_provisional_waits_for_one():
    layer = TransactionLayer()
    invite = outgoing("INVITE", branch="z9hG4bKcancelme")
    tx, _ = layer.send_request(invite, "pbx", 0.0)
    assert layer.cancel(tx, 0.1) == []  # §9.1: a CANCEL must not overtake the INVITE
    actions = layer.receive(reparse(response_to(invite, 180)), "pbx", 0.2)
    cancel = [a.message for a in sends(actions)]
    assert [(m.method, m.top_via.branch) for m in cancel] == [("CANCEL", "z9hG4bKcancelme")]
    assert len(layer) == 2
    assert layer.cancel(tx, 0.3) == []  # one CANCEL is enough


# --- back to back: a client layer and a server layer over a lossy in-memory network ------------


class Network:
    """Datagrams in flight between named peers, with loss, duplication and reordering."""

    def __init__(
        self,
        *,
        latency: float = 0.02,
        drop: Callable[[bytes], bool] = lambda data: False,
        duplicate: bool = False,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.latency, self.drop, self.duplicate, self.jitter = latency, drop, duplicate, jitter
        self.random = random.Random(seed)
        self.in_flight: list[tuple[float, int, str, str, bytes]] = []
        self.sequence = itertools.count()
        self.log: list[tuple[str, str, bytes]] = []

    def send(self, data: bytes, source: str, destination: str, now: float) -> None:
        self.log.append((source, destination, data))
        if self.drop(data):
            return
        for _ in range(2 if self.duplicate else 1):
            at = now + self.latency + self.random.uniform(0, self.jitter)
            heapq.heappush(self.in_flight, (at, next(self.sequence), source, destination, data))

    def next_arrival(self) -> float | None:
        return self.in_flight[0][0] if self.in_flight else None


TU = Callable[["Peer", Action, float], list[Action]]


class Peer:
    """A transaction layer plus a scripted TU; everything it sends goes through `network`."""

    def __init__(self, name: str, network: Network, tu: TU) -> None:
        self.name, self.network, self.tu = name, network, tu
        self.layer = TransactionLayer()
        self.events: list[Action] = []

    def perform(self, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.network.send(action.data, self.name, str(action.destination), now)
            else:
                self.events.append(action)
                self.perform(self.tu(self, action, now), now)

    def deliver(self, data: bytes, source: str, now: float) -> None:
        self.perform(self.layer.receive(parse_message(data), source, now), now)

    def seen(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]


def run(network: Network, peers: dict[str, Peer], until: float = 200.0) -> None:
    """Advance simulated time event by event, as the asyncio loop would."""
    while True:
        instants = [network.next_arrival(), *(peer.layer.next_deadline() for peer in peers.values())]
        pending = [instant for instant in instants if instant is not None]
        if not pending or min(pending) > until:
            return
        now = min(pending)
        while network.in_flight and network.in_flight[0][0] <= now:
            _, _, source, destination, data = heapq.heappop(network.in_flight)
            peers[destination].deliver(data, source, now)
        for peer in peers.values():
            deadline = peer.layer.next_deadline()
            if deadline is not None and deadline <= now:
                peer.perform(peer.layer.handle_timeout(now), now)


def uas_answering(*statuses_: int) -> TU:
    """A UAS TU answering each new request with `statuses_` (INVITE) or 200, and a CANCEL per §9.2."""

    def tu(peer: Peer, event: Action, now: float) -> list[Action]:
        layer = peer.layer
        if isinstance(event, CancelReceived):
            actions = layer.respond(
                event.transaction, response_to(event.request, 200 if event.invite else 481), now
            )
            if event.invite is not None and event.invite.state is State.PROCEEDING:
                actions += layer.respond(event.invite, response_to(event.invite.request, 487), now)
            return actions
        if isinstance(event, RequestReceived):
            answers = statuses_ if event.request.method == "INVITE" else (200,)
            return [
                a
                for status in answers
                for a in layer.respond(event.transaction, response_to(event.request, status), now)
            ]
        return []

    return tu


def uac_acking(cancel_on_ringing: bool = False) -> TU:
    """A UAC TU that ACKs every 2xx to its INVITE (§13.2.2.4) and may CANCEL on 180."""

    def tu(peer: Peer, event: Action, now: float) -> list[Action]:
        if not isinstance(event, ResponseReceived) or event.transaction.method != "INVITE":
            return []
        status = event.response.status
        if 200 <= status < 300:
            invite = event.transaction.request
            dialog = Dialog.for_uac(invite, event.response)
            ack = dialog.create_ack(invite.cseq.number, via=make_via("UDP", "uac", 5060))
            return [Send.of(ack, "uas")]
        if status == 180 and cancel_on_ringing:
            assert isinstance(event.transaction, InviteClientTransaction)
            return peer.layer.cancel(event.transaction, now)
        return []

    return tu


def wire(uas_tu: TU, uac_tu: TU | None = None, network: Network | None = None) -> tuple[Network, Peer, Peer]:
    network = network or Network()
    uac = Peer("uac", network, uac_tu or uac_acking())
    uas = Peer("uas", network, uas_tu)
    return network, uac, uas


def start(uac: Peer, method: str, **kwargs: str) -> Request:
    req = with_via(request(method, branch=None, **kwargs), make_via("UDP", "uac", 5060))
    _, actions = uac.layer.send_request(req, "uas", 0.0)
    uac.perform(actions, 0.0)
    return req


def wire_statuses(network: Network, source: str) -> list[int]:
    found = []
    for sender, _, data in network.log:
        message = parse_message(data)
        if sender == source and isinstance(message, Response):
            found.append(message.status)
    return found


def test_register_goes_through_and_everything_is_forgotten_afterwards():
    network, uac, uas = wire(uas_answering())
    start(uac, "REGISTER", uri="sip:voice.example.com")
    run(network, {"uac": uac, "uas": uas})
    assert [e.response.status for e in uac.seen(ResponseReceived)] == [200]
    assert len(uas.seen(RequestReceived)) == 1
    assert len(uac.layer) == len(uas.layer) == 0  # after Timers K and J


def test_invite_ringing_ok_ack():
    network, uac, uas = wire(uas_answering(180, 200))
    start(uac, "INVITE")
    run(network, {"uac": uac, "uas": uas})
    assert [e.response.status for e in uac.seen(ResponseReceived)] == [180, 200]
    (ack,) = uas.seen(AckReceived)
    assert ack.invite is not None and ack.request.to.tag == "as83kd9bs"
    assert wire_statuses(network, "uas") == [180, 200]  # the ACK came in time: no 2xx retransmission
    assert not uas.seen(Timeout) and len(uas.layer) == len(uac.layer) == 0


def test_invite_busy_is_acknowledged_by_the_transaction_layer():
    network, uac, uas = wire(uas_answering(486))
    start(uac, "INVITE")
    run(network, {"uac": uac, "uas": uas})
    assert [e.response.status for e in uac.seen(ResponseReceived)] == [486]
    assert uas.seen(AckReceived) == []  # absorbed by the INVITE server transaction
    acks = [data for sender, _, data in network.log if sender == "uac" and data.startswith(b"ACK")]
    assert len(acks) == 1
    assert [e.reason for e in uas.seen(Terminated)] == [TerminationReason.NORMAL]  # Timer I, not H


def test_cancel_mid_invite_gives_200_and_487():
    network, uac, uas = wire(uas_answering(180), uac_acking(cancel_on_ringing=True))
    start(uac, "INVITE")
    run(network, {"uac": uac, "uas": uas})
    got = sorted((e.response.cseq.method, e.response.status) for e in uac.seen(ResponseReceived))
    assert got == [("CANCEL", 200), ("INVITE", 180), ("INVITE", 487)]
    (cancelled,) = uas.seen(CancelReceived)
    assert cancelled.invite is uas.seen(RequestReceived)[0].transaction
    assert len(uac.layer) == len(uas.layer) == 0


def nth_matching(predicate: Callable[[bytes], bool], *indexes: int) -> Callable[[bytes], bool]:
    """Drop the listed occurrences (0-based) of messages matching `predicate`."""
    seen = itertools.count()

    def drop(data: bytes) -> bool:
        return predicate(data) and next(seen) in indexes

    return drop


def is_ok(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 200")


def is_busy(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 486")


def is_ack(data: bytes) -> bool:
    return data.startswith(b"ACK")


def test_lost_register_response_is_recovered_by_retransmission():
    network, uac, uas = wire(uas_answering(), network=Network(drop=nth_matching(is_ok, 0, 1)))
    start(uac, "REGISTER", uri="sip:voice.example.com")
    run(network, {"uac": uac, "uas": uas})
    assert len(uas.seen(RequestReceived)) == 1  # the TU answered once; the layer re-sent it
    assert [e.response.status for e in uac.seen(ResponseReceived)] == [200]
    assert wire_statuses(network, "uas") == [200, 200, 200]


def test_lost_2xx_and_lost_ack_are_recovered():
    drop_first_ok, drop_first_ack = nth_matching(is_ok, 0), nth_matching(is_ack, 0)
    network, uac, uas = wire(
        uas_answering(200), network=Network(drop=lambda d: drop_first_ok(d) or drop_first_ack(d))
    )
    start(uac, "INVITE")
    run(network, {"uac": uac, "uas": uas})
    assert len(uas.seen(AckReceived)) == 1 and not uas.seen(Timeout)
    assert len(uas.seen(RequestReceived)) == 1
    assert wire_statuses(network, "uas").count(200) == 3  # the lost one, then one per ACK lost


def test_lost_failure_response_is_recovered_by_timer_g():
    network, uac, uas = wire(uas_answering(486), network=Network(drop=nth_matching(is_busy, 0)))
    start(uac, "INVITE")
    run(network, {"uac": uac, "uas": uas})
    assert [e.response.status for e in uac.seen(ResponseReceived)] == [486]
    assert [e.reason for e in uas.seen(Terminated)] == [TerminationReason.NORMAL]


def test_duplicated_and_reordered_messages_never_create_a_second_transaction():
    network, uac, uas = wire(uas_answering(180, 200), network=Network(duplicate=True, jitter=0.3, seed=7))
    start(uac, "INVITE")
    start(uac, "REGISTER", uri="sip:voice.example.com", call_id="reg@uac")
    run(network, {"uac": uac, "uas": uas})
    assert sorted(e.request.method for e in uas.seen(RequestReceived)) == ["INVITE", "REGISTER"]
    assert len(uas.seen(AckReceived)) == 1
    finals = [(e.response.cseq.method, e.response.status) for e in uac.seen(ResponseReceived)]
    assert finals.count(("REGISTER", 200)) == 1
    assert ("INVITE", 200) in finals
    assert len(uac.layer) == len(uas.layer) == 0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.sampled_from([0.0, 0.1, 0.3, 0.6]),
    duplicate=st.booleans(),
    method=st.sampled_from(["INVITE", "REGISTER"]),
)
def test_any_loss_pattern_ends_cleanly(seed, loss, duplicate, method):
    chance = random.Random(seed)
    lossy = Network(drop=lambda d: chance.random() < loss, duplicate=duplicate, jitter=0.2, seed=seed)
    network, uac, uas = wire(uas_answering(180, 200), network=lossy)
    start(uac, method)
    run(network, {"uac": uac, "uas": uas}, until=1000.0)
    # The TU sees a request at most once, however often it crossed the wire.
    assert len(uas.seen(RequestReceived)) <= 1
    finals = [e for e in uac.seen(ResponseReceived) if e.response.status >= 200]
    timed_out = uac.seen(Timeout)
    assert bool(finals) != bool(timed_out)  # a final answer or a timeout, never both or neither
    if method == "REGISTER":
        assert len(finals) <= 1
    elif uas.seen(RequestReceived):
        # Our 2xx was either acknowledged (once, for the TU) or reported as never acknowledged.
        acknowledged = [e for e in uas.seen(AckReceived) if e.invite is not None]
        assert len(acknowledged) + len(uas.seen(Timeout)) == 1
    # Nothing is left behind: every transaction ended, and each exactly once.
    assert len(uac.layer) == len(uas.layer) == 0
    for peer in (uac, uas):
        ended = [e.transaction for e in peer.seen(Terminated)]
        assert len(ended) == len(set(map(id, ended)))
