"""A PBX registers with sipp through a real engine; nothing support sees carries a secret.

The engine runs on 127.0.0.1 (EngineThread) with the trunk configuration read from the test
database; its events go through the worker task as they would in production, so the traces
are the real bytes of a first registration and of a failed one.
"""

import logging
import subprocess
import time
from pathlib import Path

import pytest
from django.test import Client

from support.models import SipTrace, SupportAccess
from telephony.config import load_config_closing_connection
from telephony.tasks import record_engine_events
from telephony.tests.support.engine_runner import EngineThread
from trunks.config_version import config_version
from trunks.models import RegistrationState, TrunkStatus
from trunks.services import TrunkSettings, did_add, trunk_create

SIPP = Path(__file__).resolve().parents[2] / "telephony" / "tests" / "data" / "sipp" / "reg_auth.xml"
USERNAME = "e2eacme4417"
PASSWORD = "kX9-known-trunk-password"  # 24 characters, like a generated one

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def sipp_register(port: int, tmp_path: Path, password: str) -> int:
    users = tmp_path / "users.csv"
    users.write_text(
        f"SEQUENTIAL\n{USERNAME};127.0.0.1;[authentication username={USERNAME} password={password}]\n"
    )
    return subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{port}",
            "-sf",
            str(SIPP),
            "-inf",
            str(users),
            "-m",
            "1",
            "-t",
            "u1",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-nostdin",
            "-timeout",
            "10",
            "-timeout_error",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).returncode


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_support_pages_bundles_traces_and_logs_carry_no_secret(tenant, support_user, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    trunk, _ = trunk_create(
        tenant=tenant,
        values=TrunkSettings(name="E2E PBX", pbx_domain="pbx.acme.test"),
        username=USERNAME,
        password=PASSWORD,
    )
    did_add(trunk=trunk, number="+27215550777")
    engine = EngineThread(
        tmp_path, load=load_config_closing_connection, read_version=config_version, tls=False
    )
    engine.start()
    try:
        assert sipp_register(engine.udp[1], tmp_path, "wrong-password-xx") != 0
        assert sipp_register(engine.udp[1], tmp_path, PASSWORD) == 0
        assert wait_for(lambda: sum(e["type"] == "SipTraceRecorded" for e in engine.events) >= 2)
    finally:
        engine.stop()
    record_engine_events(list(engine.events))
    assert TrunkStatus.objects.get(trunk=trunk).state == RegistrationState.REGISTERED
    traces = list(SipTrace.objects.filter(trunk=trunk).order_by("at"))
    assert len(traces) >= 2
    assert any("Authorization:" in m["text"] for t in traces for m in t.messages)  # real digest bytes
    assert any(USERNAME in m["text"] for t in traces for m in t.messages)

    client = Client()
    client.force_login(support_user)
    urls = [
        "/support/",
        "/support/?q=0777",
        f"/support/trunks/{trunk.pk}/",
        f"/support/trunks/{trunk.pk}/bundle/",
    ]
    for trace in traces:
        urls += [f"/support/traces/{trace.pk}/", f"/support/traces/{trace.pk}/pcap/"]
    outputs = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        outputs.append((url, response.content))
    assert [t.pk for t, _ in client.get("/support/?q=0777").context["rows"]] == [trunk.pk]
    trunk.refresh_from_db()
    secrets = [PASSWORD, USERNAME, trunk.ha1_md5, trunk.ha1_sha256]
    for url, body in outputs:
        for secret in secrets:
            assert secret.encode() not in body, f"{secret!r} in {url}"
    for secret in secrets:
        assert secret not in caplog.text
    assert SupportAccess.objects.filter(tenant=tenant).count() == 2 + 2 * len(traces)
