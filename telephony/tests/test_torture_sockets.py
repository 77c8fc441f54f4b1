"""RFC 4475 torture messages thrown at a live engine over UDP and TCP, in a loopback-only netns.

The messages name hosts such as 192.0.2.2 in Via/Contact; the engine answers only to the
packet's source, and the namespace has no other interface, so nothing can leave 127.0.0.1.
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TORTURE = Path(__file__).parent / "data" / "rfc4475"


@pytest.fixture(scope="module")
def results():
    if not TORTURE.exists():
        pytest.fail("torture messages missing from telephony/tests/data/rfc4475")
    namespace = f"sa-torture-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
        run = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                sys.executable,
                "-m",
                "telephony.tests.support.netns_torture",
                str(TORTURE),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def test_engine_keeps_serving_after_every_torture_message(results):
    assert results["alive"] is True
    assert len(results["udp"]) == len(list(TORTURE.glob("*.dat")))


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("badvers", 505),
        ("unkscm", 416),
        ("novelsc", 416),
        ("bext01", 420),
        ("invut", 415),
        ("sdp01", 406),
        ("mismatch01", 400),
        ("insuf", 400),
        ("multi01", 400),
        ("intmeth", 501),
        ("esc02", 501),
        ("zeromf", 200),
        ("regaut01", 401),
        ("cparam01", 401),
        ("escnull", 401),
        ("dblreq", 401),
    ],
)
def test_udp_answers(results, name, status):
    assert results["udp"][name] == status


@pytest.mark.parametrize("name", ["bigcode", "scalarlg", "bcast", "unreason", "noreason"])
def test_responses_are_never_answered(results, name):
    assert results["udp"][name] is None and results["tcp"][name] is None


def test_tcp_answers_match_udp_for_well_framed_requests(results):
    for name in ("badvers", "unkscm", "bext01", "intmeth", "zeromf", "regaut01"):
        assert results["tcp"][name] == results["udp"][name], name
