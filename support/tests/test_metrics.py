"""Prometheus text: /metrics on the web app (token) and the engine's endpoint on 127.0.0.1."""

import re
import socket
import time
import urllib.request

import pytest
import redis

from support.models import AlertKind, TrunkAlert
from telephony.tests.support.engine_runner import EngineThread
from trunks.services import trunk_suspend
from trunks.tests.factories import set_registered

TOKEN = "metrics-test-token-1234"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.mark.django_db
def test_metrics_need_the_token(client, settings, trunk):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # off unless configured
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


@pytest.mark.django_db
def test_trunk_states_alerts_and_queue_depth(client, metrics_token, settings, trunk, other_trunk):
    set_registered(other_trunk)
    trunk_suspend(trunk=trunk)
    TrunkAlert.objects.create(
        tenant=trunk.tenant, trunk=trunk, kind=AlertKind.DOWN, opened_at=trunk.created_at
    )
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    depth = broker.llen("celery")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'smartalex_trunks{state="registered"} 1.0' in text
    assert 'smartalex_trunks{state="suspended"} 1.0' in text
    assert 'smartalex_trunks{state="not_registered"} 0.0' in text
    assert 'smartalex_trunk_alerts_open{kind="down"} 1.0' in text
    # Other test runs share the broker database, so the depth is read, not predicted.
    assert depth >= 0 and re.search(r"^smartalex_celery_queue_depth \d+\.0$", text, re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_engine_serves_its_counters_on_localhost(tmp_path, settings):
    settings.SIP_METRICS_PORT = free_port()
    engine = EngineThread(tmp_path, tls=False).start()
    try:
        deadline = time.monotonic() + 5
        while getattr(engine.engine, "metrics_port", None) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.engine.metrics_port == settings.SIP_METRICS_PORT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # one OPTIONS, answered 200
            sock.bind(("127.0.0.1", 0))
            sock.sendto(
                (
                    f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{sock.getsockname()[1]};branch=z9hG4bKm1\r\n"
                    "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: metrics-1\r\nCSeq: 1 OPTIONS\r\n"
                    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                engine.udp,
            )
            sock.settimeout(3)
            assert sock.recvfrom(4096)[0].startswith(b"SIP/2.0 200")
        url = f"http://127.0.0.1:{settings.SIP_METRICS_PORT}/metrics"
        text = urllib.request.urlopen(url, timeout=3).read().decode()
        assert 'smartalex_sip_messages_total{kind="options"} 1.0' in text
        assert 'smartalex_sip_register_total{outcome="auth_failures"} 0.0' in text
        assert 'smartalex_sip_abuse_total{event="bans"} 0.0' in text
        assert "smartalex_sip_transport_total" in text
    finally:
        engine.stop()
    with pytest.raises(OSError):  # stopped with the engine
        urllib.request.urlopen(url, timeout=1)
