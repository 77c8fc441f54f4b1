"""The media layer's exceptions, typed by whose fault a failure is.

A peer's garbage must never surface as an IndexError or struct.error from deep inside a
parser: the I/O layer catches `PeerMediaError`, counts the packet as malformed and carries on.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of every error the media layer raises on purpose."""


class PeerMediaError(MediaError):
    """The peer sent something we cannot use; drop it and keep serving."""


class RtpParseError(PeerMediaError):
    """The bytes are not a well-formed RTP or RTCP packet."""


class DtmfParseError(PeerMediaError):
    """The payload is not a well-formed RFC 4733 telephone-event."""


class LocalMediaError(MediaError):
    """Our side failed or was misused (bad argument, resource limit)."""


class CodecError(LocalMediaError):
    """Unknown codec, or audio of the wrong shape for it (odd byte count, bad WAV)."""


class PortsExhausted(LocalMediaError):
    """Every RTP port in the configured range is in use."""
