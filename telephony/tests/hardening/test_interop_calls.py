"""Real SIP phones call a DID through the engine: baresip and Linphone register, dial, are answered
by the agent and hang up; each phone's tone and the agent's prompt flow both ways. On 127.0.0.1 only;
skipped when a phone is not installed (Debian packages baresip, linphone-cli; CI installs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from telephony.tests.test_calls_e2e import (  # noqa: F401
    DID,
    PASSWORD,
    events_of,
    start_engine,
    trunk,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def engine(tmp_path, trunk):  # noqa: F811
    thread = start_engine(tmp_path, rtp_port_min=36000, rtp_port_max=36999)
    yield thread
    thread.stop()


def baresip_call(engine, home: Path, *commands: str, seconds: int = 8) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    port = engine.udp[1]
    (home / "accounts").write_text(f"<sip:calls0001@127.0.0.1:{port}>;auth_pass={PASSWORD};regint=600\n")
    (home / "config").write_text(
        "poll_method epoll\nsip_listen 127.0.0.1:0\n"
        "dns_server 127.0.0.1:53\n"  # never a resolver beyond this machine
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule menu.so\nmodule_app account.so\n"
        # A 48 kHz stereo tone as the microphone (all ausine does; baresip resamples to 8 kHz
        # mono G.711), and a loudspeaker that goes nowhere.
        "audio_source ausine,440\naudio_player aubridge,speaker\n"
        "ausrc_srate 48000\nausrc_channels 2\n"
    )
    argv = ["baresip", "-f", str(home), "-t", str(seconds)]
    for command in commands:
        argv += ["-e", command.format(did=DID, port=port)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)  # hangs up at -t


def test_baresip_calls_the_did_and_is_answered_with_media(engine, tmp_path):
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed")
    calls = []
    engine.engine.calls.on_answered.append(calls.append)
    run = baresip_call(engine, tmp_path / "baresip", "/dial sip:{did}@127.0.0.1:{port}")
    output = run.stdout + run.stderr
    answered = wait_for(lambda: events_of(engine, "CallAnswered"), timeout=10)
    assert answered, output[-3000:]
    assert answered[0]["codec"] in ("PCMU", "PCMA")
    started = events_of(engine, "CallStarted")[0]
    assert started["did"] == DID
    ended = wait_for(lambda: events_of(engine, "CallEnded"), timeout=15)
    assert ended and ended[0]["outcome"] == "caller_hung_up", ended
    # Seconds of RTP both ways: baresip's tone reached the engine, the agent's prompt reached it.
    stats = calls[0].media.stats
    assert stats.packets_received > 50 and stats.packets_sent > 50, (stats, output[-2000:])


def tone_wav(path: Path, *, seconds: float) -> Path:
    """A 440 Hz tone, 8 kHz 16-bit mono: what Linphone's file player reads without resampling."""
    import math
    import struct
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(int(8000 * seconds)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def test_linphone_calls_the_did_and_is_answered_with_media(engine, tmp_path):
    if shutil.which("linphonecsh") is None:
        pytest.skip("linphone-cli is not installed")
    import time

    from telephony.tests.hardening.support import linphone_daemon

    calls = []
    engine.engine.calls.on_answered.append(calls.append)
    with linphone_daemon(tmp_path / "linphone", rc_extra="[sound]\necho_cancellation=0\n") as sh:
        sh("generic", "soundcard use files")  # no sound card here: play and record files
        # The microphone in file mode (linphone_core_set_play_file): without it, nothing is sent.
        sh("generic", f"play {tone_wav(tmp_path / 'tone.wav', seconds=10)}")
        sh(
            "register",
            "--host",
            f"127.0.0.1:{engine.udp[1]}",
            "--username",
            "calls0001",
            "--password",
            PASSWORD,
        )
        assert wait_for(lambda: "registered," in sh("status", "register").stdout, timeout=20)
        sh("dial", f"sip:{DID}@127.0.0.1:{engine.udp[1]}")
        assert wait_for(lambda: events_of(engine, "CallAnswered"), timeout=15), sh("status", "hook").stdout
        time.sleep(3)
        sh("hangup")
        ended = wait_for(lambda: events_of(engine, "CallEnded"), timeout=15)
    assert ended and ended[0]["outcome"] == "caller_hung_up", ended
    # Seconds of RTP both ways: the WAV it plays as its microphone, and the agent's prompt.
    stats = calls[0].media.stats
    assert stats.packets_received > 50 and stats.packets_sent > 50, stats
