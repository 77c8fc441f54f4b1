"""SDP parsing and offer/answer, on offers shaped like the PBXs we meet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.sip.errors import LocalError, NotAcceptableHere, ParseError, SipError
from telephony.sip.sdp import (
    Attribute,
    Direction,
    SessionDescription,
    accept_answer,
    build_answer,
    build_offer,
    parse_sdp,
)


def sdp(text: str, *, eol: str = "\r\n") -> bytes:
    return "".join(line.strip() + eol for line in text.strip().splitlines()).encode()


ASTERISK = sdp("""
    v=0
    o=- 1672531200 1672531200 IN IP4 203.0.113.10
    s=Asterisk
    c=IN IP4 203.0.113.10
    t=0 0
    m=audio 18270 RTP/AVP 0 8 3 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:3 GSM/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=ptime:20
    a=maxptime:150
    a=sendrecv
""")

# 3CX: A-law first, G.722, G.729, iLBC and GSM, session-level direction, RTCP port given.
THREECX = sdp("""
    v=0
    o=3cxPS 2089271552 335544321 IN IP4 198.51.100.7
    s=3cxPS Audio call
    c=IN IP4 198.51.100.7
    t=0 0
    a=sendrecv
    m=audio 7008 RTP/AVP 8 0 9 18 97 3 101
    a=rtpmap:8 PCMA/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:9 G722/8000
    a=rtpmap:18 G729/8000
    a=fmtp:18 annexb=no
    a=rtpmap:97 iLBC/8000
    a=fmtp:97 mode=20
    a=rtpmap:3 GSM/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=rtcp:7009 IN IP4 198.51.100.7
""")

# FreePBX (chan_pjsip): Opus and G.722 ahead of G.711, several telephone-events, a video
# stream, b= and unknown attributes.
FREEPBX = sdp("""
    v=0
    o=- 2044733473 2044733475 IN IP4 192.0.2.40
    s=Asterisk
    c=IN IP4 192.0.2.40
    b=AS:128
    t=0 0
    m=audio 14238 RTP/AVP 107 9 8 0 111 101 102
    a=rtpmap:107 opus/48000/2
    a=fmtp:107 useinbandfec=1
    a=rtpmap:9 G722/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:111 G726-32/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=rtpmap:102 telephone-event/48000
    a=ptime:20
    a=maxptime:20
    a=X-vendor-thing:42
    a=sendrecv
    m=video 14240 RTP/AVP 99
    a=rtpmap:99 H264/90000
    a=sendrecv
""")

G722_ONLY = sdp("""
    v=0
    o=user 1 1 IN IP4 192.0.2.9
    s=call
    c=IN IP4 192.0.2.9
    t=0 0
    m=audio 5004 RTP/AVP 9 96
    a=rtpmap:9 G722/8000
    a=rtpmap:96 telephone-event/8000
    a=fmtp:96 0-15
""")

PCMA_FIRST = sdp("""
    v=0
    o=root 11 12 IN IP4 192.0.2.20
    s=call
    c=IN IP4 192.0.2.20
    t=0 0
    m=audio 40000 RTP/AVP 8 0 101
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=ptime:30
""")

HOLD_SENDONLY = ASTERISK.replace(b"a=sendrecv", b"a=sendonly")
HOLD_ZERO = sdp("""
    v=0
    o=- 1 2 IN IP4 192.0.2.20
    s=-
    c=IN IP4 0.0.0.0
    t=0 0
    m=audio 40000 RTP/AVP 0 101
    a=rtpmap:101 telephone-event/8000
""")

IPV6 = sdp("""
    v=0
    o=- 5 5 IN IP6 2001:db8::10
    s=-
    c=IN IP6 2001:db8::10
    t=0 0
    m=audio 30000 RTP/AVP 0 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
""")

SAMPLES = [ASTERISK, THREECX, FREEPBX, G722_ONLY, PCMA_FIRST, HOLD_SENDONLY, HOLD_ZERO, IPV6]
LOCAL = {"local_address": "192.0.2.200", "local_port": 20000, "session_id": 77, "session_version": 1}


def answer(offer: bytes, **kw):
    return build_answer(parse_sdp(offer), **{**LOCAL, **kw})


# --- parsing ------------------------------------------------------------------------------------


def test_parse_asterisk_offer():
    desc = parse_sdp(ASTERISK)
    assert desc.origin.session_id == "1672531200" and desc.session_name == "Asterisk"
    assert desc.connection.address == "203.0.113.10" and desc.connection.addrtype == "IP4"
    (audio,) = desc.media
    assert (audio.kind, audio.port, audio.proto, audio.formats) == (
        "audio",
        18270,
        "RTP/AVP",
        ("0", "8", "3", "101"),
    )
    assert [f.name for f in audio.formats_resolved] == ["PCMU", "PCMA", "GSM", "telephone-event"]
    assert audio.fmtps["101"] == "0-16"
    assert (audio.ptime, audio.maxptime, desc.direction_of(audio)) == (20, 150, Direction.SENDRECV)


def test_static_types_resolve_without_rtpmap_and_g722_clock_quirk():
    desc = parse_sdp(PCMA_FIRST)
    assert [(f.name, f.payload_type) for f in desc.media[0].formats_resolved][:2] == [
        ("PCMA", 8),
        ("PCMU", 0),
    ]
    g722 = parse_sdp(G722_ONLY).media[0].formats_resolved[0]
    assert (g722.name, g722.rtp_clock_rate, g722.sample_rate) == ("G722", 8000, 16000)


def test_session_level_direction_and_rtcp():
    desc = parse_sdp(THREECX)
    assert desc.direction is Direction.SENDRECV and desc.media[0].direction is None
    port, where = desc.media[0].rtcp
    assert port == 7009 and where.address == "198.51.100.7"


def test_media_level_connection_overrides_session_level():
    body = ASTERISK.replace(b"a=ptime:20", b"c=IN IP4 203.0.113.99\r\na=ptime:20")
    result = answer(body)
    assert result.audio.remote_address == "203.0.113.99"


def test_lf_only_parses_like_crlf():
    assert parse_sdp(ASTERISK.replace(b"\r\n", b"\n")) == parse_sdp(ASTERISK)


def test_ipv6_offer_and_answer():
    result = build_answer(parse_sdp(IPV6), **{**LOCAL, "local_address": "2001:db8::200"})
    assert (result.audio.remote_address, result.audio.remote_port) == ("2001:db8::10", 30000)
    text = result.to_bytes().decode()
    assert "c=IN IP6 2001:db8::200\r\n" in text and "o=smartalex 77 1 IN IP6 2001:db8::200\r\n" in text


def test_host_names_are_kept_not_resolved():
    body = ASTERISK.replace(b"c=IN IP4 203.0.113.10", b"c=IN IP4 media.pbx.example.com")
    assert answer(body).audio.remote_address == "media.pbx.example.com"


def test_unknown_lines_are_kept_and_written_back():
    desc = parse_sdp(FREEPBX)
    assert ("b", "AS:128") in desc.other
    assert Attribute("X-vendor-thing", "42") in desc.media[0].attributes
    assert parse_sdp(desc.to_bytes()) == desc
    assert desc.to_bytes() == FREEPBX  # already in RFC 4566 order: byte for byte


@pytest.mark.parametrize("body", SAMPLES)
def test_round_trip(body):
    desc = parse_sdp(body)
    written = desc.to_bytes()
    assert written.endswith(b"\r\n") and b"\n" not in written.replace(b"\r\n", b"")
    assert parse_sdp(written) == desc


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"o=- 1 1 IN IP4 192.0.2.1\r\n",  # no v=
        b"v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
        b"v=0\r\ns=-\r\n",  # no o=
        b"v=0\r\no=- 1 1 IN IP4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nthis is not sdp\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 ::1\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 <bad>\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio port RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 70000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:fast\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",  # no c= anywhere
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\no=- 2 2 IN IP4 x\r\n",
    ],
)
def test_malformed_is_a_400(body):
    with pytest.raises(ParseError) as raised:
        parse_sdp(body)
    assert raised.value.status == 400


# --- answering ----------------------------------------------------------------------------------


def test_answer_to_asterisk():
    result = answer(ASTERISK)
    audio = result.audio
    assert (audio.codec.name, audio.codec.payload_type, audio.codec.rtp_clock_rate) == ("PCMU", 0, 8000)
    assert audio.telephone_event_pt == 101
    assert (audio.remote_address, audio.remote_port, audio.ptime) == ("203.0.113.10", 18270, 20)
    assert audio.direction is Direction.SENDRECV
    assert result.to_bytes() == sdp("""
        v=0
        o=smartalex 77 1 IN IP4 192.0.2.200
        s=-
        c=IN IP4 192.0.2.200
        t=0 0
        m=audio 20000 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=sendrecv
    """)


def test_pcma_first_offer_still_gets_pcmu():
    # Our documented priority (PCMU > PCMA > G.722) wins over the offer's order.
    audio = answer(PCMA_FIRST).audio
    assert (audio.codec.name, audio.codec.payload_type) == ("PCMU", 0)
    assert audio.ptime == 30  # what the peer wants to receive


def test_preferences_can_be_overridden():
    assert answer(PCMA_FIRST, preferences=("PCMA", "PCMU")).audio.codec.name == "PCMA"


def test_3cx_offer():
    result = answer(THREECX)
    assert result.audio.codec.name == "PCMU"
    assert result.audio.telephone_event_pt == 101
    assert b"a=fmtp:101 0-15\r\n" in result.to_bytes()  # only what they offered
    assert result.audio.direction is Direction.SENDRECV  # from the session level


def test_freepbx_offer_rejects_video_and_ignores_48k_events():
    result = answer(FREEPBX)
    assert result.audio.codec.name == "PCMU"
    assert result.audio.telephone_event_pt == 101
    audio, video = result.sdp.media
    assert (audio.port, audio.formats) == (20000, ("0", "101"))
    assert (video.kind, video.port, video.formats) == ("video", 0, ("99",))


def test_g722_only_offer():
    audio = answer(G722_ONLY).audio
    assert (audio.codec.name, audio.codec.payload_type) == ("G722", 9)
    assert (audio.codec.rtp_clock_rate, audio.codec.sample_rate) == (8000, 16000)
    assert audio.telephone_event_pt == 96  # the offer's dynamic number is kept


@pytest.mark.parametrize(
    ("offered", "answered", "we_send"),
    [
        ("sendrecv", Direction.SENDRECV, True),
        ("sendonly", Direction.RECVONLY, False),
        ("recvonly", Direction.SENDONLY, True),
        ("inactive", Direction.INACTIVE, False),
    ],
)
def test_direction_is_mirrored(offered, answered, we_send):
    result = answer(ASTERISK.replace(b"a=sendrecv", f"a={offered}".encode()))
    assert result.audio.direction is answered and result.audio.direction.sends is we_send
    assert f"a={answered}\r\n".encode() in result.to_bytes()


def test_hold_with_sendonly():
    result = answer(HOLD_SENDONLY)
    assert result.audio.direction is Direction.RECVONLY
    assert b"a=recvonly\r\n" in result.to_bytes()


def test_hold_with_zero_address_means_send_nothing():
    result = answer(HOLD_ZERO)
    assert result.audio.remote_address == "0.0.0.0"
    assert result.audio.direction is Direction.RECVONLY and not result.audio.direction.sends


def test_no_common_codec_is_488():
    only_g729 = ASTERISK.replace(b"RTP/AVP 0 8 3 101", b"RTP/AVP 18 3 101")
    with pytest.raises(NotAcceptableHere) as raised:
        answer(only_g729)
    assert (raised.value.status, raised.value.reason) == (488, "Not Acceptable Here")


def test_g729_only_when_allowed():
    only_g729 = THREECX.replace(b"RTP/AVP 8 0 9 18 97 3 101", b"RTP/AVP 18 97 101")
    result = answer(only_g729, allow_g729=True)
    assert (result.audio.codec.name, result.audio.codec.fmtp) == ("G729", "annexb=no")
    assert b"a=fmtp:18 annexb=no\r\n" in result.to_bytes()
    # Allowed, but G.711 is still preferred when offered.
    assert answer(THREECX, allow_g729=True).audio.codec.name == "PCMU"


def test_srtp_only_offer_is_488():
    with pytest.raises(NotAcceptableHere):
        answer(ASTERISK.replace(b"RTP/AVP", b"RTP/SAVP"))


def test_audio_stream_with_port_zero_is_not_chosen():
    body = ASTERISK.replace(b"m=audio 18270", b"m=audio 0")
    with pytest.raises(NotAcceptableHere):
        answer(body)


def test_second_audio_stream_is_used_when_the_first_has_nothing():
    two = ASTERISK.replace(b"a=sendrecv\r\n", b"a=sendrecv\r\nm=audio 18272 RTP/AVP 0\r\n").replace(
        b"RTP/AVP 0 8 3 101", b"RTP/AVP 3"
    )
    result = answer(two)
    first, second = result.sdp.media
    assert (first.port, second.port) == (0, 20000)
    assert (result.audio.media_index, result.audio.remote_port) == (1, 18272)


def test_dtmf_without_fmtp_means_0_to_15_and_can_be_turned_off():
    result = answer(HOLD_ZERO)
    assert b"a=fmtp:101 0-15\r\n" in result.to_bytes()
    off = answer(ASTERISK, dtmf=False)
    assert off.audio.telephone_event_pt is None and off.sdp.media[0].formats == ("0",)


@pytest.mark.parametrize(
    ("fmtp", "answered"),
    [("0-15,32-63", b"0-15"), ("0-11,16", b"0-11,16"), ("0-255", b"0-16"), ("nonsense", b"0-15")],
)
def test_dtmf_events_answered_are_what_both_sides_know(fmtp, answered):
    body = ASTERISK.replace(b"a=fmtp:101 0-16", f"a=fmtp:101 {fmtp}".encode())
    assert b"a=fmtp:101 " + answered + b"\r\n" in answer(body).to_bytes()


def test_our_address_must_be_an_ip_literal():
    with pytest.raises(LocalError):
        answer(ASTERISK, local_address="media.smartalex.example")


def test_answer_copies_the_offer_timing():
    body = ASTERISK.replace(b"t=0 0", b"t=3034423619 3042462419")
    assert ("t", "3034423619 3042462419") in answer(body).sdp.other


# --- our offers ---------------------------------------------------------------------------------


def test_offer_answer_between_two_of_us():
    offer = build_offer(local_address="192.0.2.200", local_port=20000, session_id=1, session_version=1)
    assert offer.media[0].formats == ("0", "8", "9", "101")
    peer = build_answer(
        parse_sdp(offer.to_bytes()),
        local_address="198.51.100.1",
        local_port=30000,
        session_id=9,
        session_version=9,
        preferences=("G722", "PCMA"),
    )
    audio = accept_answer(offer, parse_sdp(peer.to_bytes()))
    assert (audio.codec.name, audio.telephone_event_pt) == ("G722", 101)
    assert (audio.remote_address, audio.remote_port, audio.direction) == (
        "198.51.100.1",
        30000,
        Direction.SENDRECV,
    )


def test_accept_answer_refusing_our_audio_is_488():
    offer = build_offer(local_address="192.0.2.200", local_port=20000, session_id=1, session_version=1)
    refused = sdp("""
        v=0
        o=- 1 1 IN IP4 198.51.100.1
        s=-
        c=IN IP4 198.51.100.1
        t=0 0
        m=audio 0 RTP/AVP 0
    """)
    with pytest.raises(NotAcceptableHere):
        accept_answer(offer, parse_sdp(refused))


def test_accept_answer_on_hold():
    offer = build_offer(local_address="192.0.2.200", local_port=20000, session_id=1, session_version=2)
    held = parse_sdp(ASTERISK.replace(b"a=sendrecv", b"a=recvonly"))
    audio = accept_answer(offer, held)
    assert audio.codec.name == "PCMU" and audio.direction is Direction.SENDONLY


# --- fuzzing ------------------------------------------------------------------------------------

FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"=",
    b" ",
    b":",
    b"/",
    b"0",
    b"a=",
    b"m=audio ",
    b"c=IN IP6 ",
    b"\xff",
    b"\x00",
    b"-",
]


@given(st.data())
def test_mutations_only_ever_raise_parse_error(data):
    body = data.draw(st.sampled_from(SAMPLES))
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(body)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.sampled_from(FRAGMENTS) | st.binary(max_size=4))
        body = body[:at] + insert + body[at + cut :]
    try:
        desc = parse_sdp(body)
    except ParseError:
        return
    assert isinstance(desc, SessionDescription)
    assert parse_sdp(desc.to_bytes()) == desc
    try:
        build_answer(desc, **LOCAL)
    except NotAcceptableHere:
        pass
    except SipError as error:  # anything else would be a bug of ours
        raise AssertionError(error) from error


@given(st.data())
def test_reordered_and_repeated_lines_only_ever_raise_parse_error(data):
    lines = data.draw(st.sampled_from(SAMPLES)).split(b"\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines.insert(j, lines[i])
    try:
        desc = parse_sdp(b"\r\n".join(lines))
    except ParseError:
        return
    assert parse_sdp(desc.to_bytes()) == desc


def test_a_second_c_line_out_of_place_survives_a_round_trip():
    # Found by the mutation test: s= turned into a c= line naming a host.
    body = FREEPBX.replace(b"s=Asterisk", b"c=IN IP6 Asterisk")
    desc = parse_sdp(body)
    assert desc.connection.address == "Asterisk" and ("c", "IN IP4 192.0.2.40") in desc.other
    assert parse_sdp(desc.to_bytes()) == desc


@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_parse_error(body):
    try:
        desc = parse_sdp(b"v=0\r\n" + body)
    except ParseError:
        return
    assert parse_sdp(desc.to_bytes()) == desc
