"""Calls: an INVITE on a DID → the trunk's agent, media, REFER transfers (DESIGN.md `calls.py`).

- `routing`: who is calling and where to (trunk identification, DID, limits), pure functions;
- `handler`: `CallHandler`, what the engine hands INVITE/ACK/CANCEL and in-dialog requests to;
- `call`: one call's dialog, media and life cycle;
- `transfer`: REFER with NOTIFY tracking, and the bridged fallback;
- `agents`: the agent on the call (the receptionist, or a DTMF-only fallback).
"""

from telephony.calls.handler import CallHandler, CallSettings

__all__ = ["CallHandler", "CallSettings"]
