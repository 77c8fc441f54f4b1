"""Trace storage, redaction, the ladder, and .pcap files that tshark reads."""

import shutil
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from support.models import SipTrace
from support.traces import (
    Redaction,
    mask_numbers,
    pcap_bytes,
    redact_sip_text,
    trace_ladder,
    trace_records_store,
    traces_prune,
)
from telephony import events as ev
from telephony.tasks import record_engine_events

from .conftest import AUTH_USERNAME, make_trace, register_exchange

RESPONSE = "6629fae49393a05397450978507c4ef1"


def test_digest_values_are_redacted_and_the_rest_kept():
    text = register_exchange(AUTH_USERNAME)[0]["text"]
    redacted = redact_sip_text(text)
    assert RESPONSE not in redacted
    assert "dcd98b7102dd2f0e8b11d0f600bfb0c093" not in redacted and "0a4f113b" not in redacted
    assert 'response="[redacted]"' in redacted and 'nonce="[redacted]"' in redacted
    assert 'realm="sip.voice.getsmartalex.com"' in redacted and "CSeq: 2 REGISTER" in redacted
    assert AUTH_USERNAME in redacted  # only support's redaction hides the username


def test_support_redaction_hides_the_username_everywhere():
    text = register_exchange(AUTH_USERNAME)[0]["text"]
    redacted = Redaction(username=AUTH_USERNAME).apply(text)
    assert AUTH_USERNAME not in redacted
    assert "From: <sip:[auth-username]@sip.voice.getsmartalex.com>" in redacted


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+27215550123", "+*******0123"),
        ("From: <sip:0215550123@pbx>", "From: <sip:******0123@pbx>"),
        ("CSeq: 2 REGISTER", "CSeq: 2 REGISTER"),
        ("203.0.113.10:5060", "203.0.113.10:5060"),
    ],
)
def test_numbers_keep_their_last_four_digits(text, masked):
    assert mask_numbers(text) == masked


def test_ladder_rows_follow_the_wire():
    rows = trace_ladder(messages=register_exchange(AUTH_USERNAME))
    assert [(r.label, r.from_pbx) for r in rows] == [("REGISTER", True), ("403 Forbidden", False)]
    assert rows[1].offset_ms == pytest.approx(4, abs=0.5)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_tshark_reads_the_pcap(tmp_path, family):
    messages = register_exchange(AUTH_USERNAME)
    if family == "ipv6":
        for m, (src, dst) in zip(messages, [("[2001:db8::10]:5060", "[2001:db8::1]:5060")] * 2, strict=True):
            m["src"], m["dst"] = (src, dst) if m["direction"] == "in" else (dst, src)
    path = tmp_path / "trace.pcap"
    path.write_bytes(pcap_bytes(messages=messages))
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.Call-ID",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line.strip()]
    assert rows == [["REGISTER", "", "a84b4c76e66710@pbx"], ["", "403", "a84b4c76e66710@pbx"]]


def _event(trunk_id, username=AUTH_USERNAME, event_id=None):
    return ev.SipTraceRecorded(
        kind="register",
        call_id="a84b4c76e66710@pbx",
        trunk_id=trunk_id,
        username=username,
        outcome="403 Forbidden",
        messages=tuple(register_exchange(username)),
        at=timezone.now().timestamp(),
        **({"event_id": event_id} if event_id else {}),
    )


@pytest.mark.django_db
def test_worker_task_stores_traces_once_even_when_retried(trunk):
    batch = [ev.encode(_event(trunk.pk)), ev.encode(_event(None, username="nosuchuser"))]
    record_engine_events(batch)
    record_engine_events(batch)  # a retry of the same batch
    traces = SipTrace.objects.order_by("pk")
    assert traces.count() == 2
    assert traces[0].trunk == trunk and traces[0].tenant == trunk.tenant
    assert traces[1].trunk is None and traces[1].tenant is None and traces[1].username == "nosuchuser"
    assert traces[0].messages[0]["text"].startswith("REGISTER sip:")


@pytest.mark.django_db
def test_trace_of_a_deleted_trunk_is_kept_platform_level(trunk):
    missing = trunk.pk + 10_000
    assert trace_records_store(events=[_event(missing)]) == 1
    assert SipTrace.objects.get().trunk_id is None


@pytest.mark.django_db
def test_prune_keeps_the_retention_window(trunk, settings):
    settings.SIP_TRACE_RETENTION_DAYS = 7
    old = make_trace(trunk, seconds_ago=int(timedelta(days=8).total_seconds()))
    fresh = make_trace(trunk, seconds_ago=int(timedelta(days=6).total_seconds()))
    assert traces_prune() == 1
    assert list(SipTrace.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not SipTrace.objects.filter(pk=old.pk).exists()
    assert uuid.UUID(str(fresh.event_id))
