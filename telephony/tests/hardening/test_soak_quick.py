"""The soak's quick version: `bench/soak.py` for 15 s — REGISTERs from sipp and calls with RTP
both ways from a PBX at the same time, against a real `sipserver` on private PostgreSQL and
Redis. The long run (600 s) stays in bench/; this one catches a failure or a leaked socket."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from telephony.tests.hardening.support import ROOT, python_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

DURATION, RATE, CALLS, CALL_SECONDS = 15, 100, 4, 4


def test_registrations_and_calls_together_fail_nothing_and_leak_no_socket():
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--duration", str(DURATION), "--rate", str(RATE), "--users", "50",
         "--calls", str(CALLS), "--call-seconds", str(CALL_SECONDS)],
        cwd=ROOT, env=python_env(), capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("SOAK-RESULT ")]
    assert lines, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("SOAK-RESULT "))
    assert run.returncode == 0, run.stdout[-3000:]
    assert result["registrations_failed"] == 0 and result["registrations_ok"] == RATE * DURATION
    calls = result["calls"]
    assert calls["failed"] == 0 and calls["answered"] == calls["attempted"], calls
    # 4 callers, 4 s a call, for 15 s: about 15 calls; fewer only if set-ups crawl under load.
    assert calls["answered"] >= CALLS * 2, calls
    # 50 packets/s each way while a call is up; a call we hung up has had CALL_SECONDS of it.
    assert calls["rtp_received"] >= calls["answered"] * 50 * CALL_SECONDS * 0.5, calls
    assert calls["rtp_sent"] >= calls["answered"] * 50 * CALL_SECONDS * 0.5, calls
    idle, end = result["udp_sockets"]
    assert end == idle, f"media sockets left open: {result['udp_sockets']}"
    start_fds, _, end_fds = result["fds"]
    assert end_fds <= start_fds + 16, result["fds"]  # Redis/PostgreSQL pools vary a little; calls must not
