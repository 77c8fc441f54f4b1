"""Retransmitted REGISTER/OPTIONS datagrams are answered from the cache, without a parse."""

from __future__ import annotations

import socket
import uuid

import pytest

from telephony.retransmit_cache import RetransmitCache
from telephony.tests.support.engine_runner import EngineThread
from telephony.tests.support.sip_client import options_request
from telephony.transport import Peer

PEER = Peer("udp", "127.0.0.1", 5080)
REQUEST = (
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1;rport\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1@h\r\nCSeq: 1 REGISTER\r\n"
    b"Content-Length: 0\r\n\r\n"
)
FINAL = (
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1;rport=5080\r\n"
    b"Call-ID: c1@h\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)


def test_a_copy_is_dropped_while_pending_then_answered_with_the_final_response():
    cache = RetransmitCache(window=5.0)
    assert cache.check(REQUEST, PEER, 0.0) is RetransmitCache.NEW
    assert cache.check(REQUEST, PEER, 0.1) is None  # still being handled
    cache.response_sent(FINAL.replace(b"401 Unauthorized", b"100 Trying"))  # provisional: not kept
    assert cache.check(REQUEST, PEER, 0.2) is None
    cache.response_sent(FINAL)
    assert cache.check(REQUEST, PEER, 0.5) == FINAL
    assert cache.check(REQUEST, PEER, 6.0) == FINAL  # the previous window still answers
    assert cache.check(REQUEST, PEER, 12.0) is RetransmitCache.NEW  # forgotten: the engine decides
    assert (cache.answered, cache.dropped) == (2, 2)


def test_other_sources_other_requests_and_too_many_copies_are_not_answered_from_the_cache():
    cache = RetransmitCache(max_answers=2)
    cache.check(REQUEST, PEER, 0.0)
    cache.response_sent(FINAL)
    assert cache.check(REQUEST, Peer("udp", "127.0.0.2", 5080), 0.1) is RetransmitCache.NEW
    assert cache.check(REQUEST.replace(b"CSeq: 1", b"CSeq: 2"), PEER, 0.1) is RetransmitCache.NEW
    assert cache.check(REQUEST, PEER, 0.2) == FINAL
    assert cache.check(REQUEST, PEER, 0.3) == FINAL
    assert cache.check(REQUEST, PEER, 0.4) is None


@pytest.fixture
def server(tmp_path):
    engine = EngineThread(tmp_path, tls=False).start()
    yield engine
    engine.stop()


def test_the_engine_sees_a_retransmission_once_and_it_gets_the_same_answer(server):
    request = options_request(*server.udp).replace(b"Call-ID: ", b"Call-ID: " + uuid.uuid4().hex.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        answers = []
        for _ in range(3):
            client.sendto(request, server.udp)
            answers.append(client.recvfrom(65535)[0])
    assert answers[0].startswith(b"SIP/2.0 200") and answers[0] == answers[1] == answers[2]
    assert server.call(_requests(server.engine)) == 1
    assert server.engine.transports.retransmits.answered == 2


async def _requests(engine):
    return engine.counters["requests"]
