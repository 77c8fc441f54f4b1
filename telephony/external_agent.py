"""External agents: an outside AI voice runtime takes calls over a WebSocket (docs/external-agents.md).

One WebSocket is one line. The runtime connects to ws://SIP_HOST:AGENT_WS_PORT, says

    {"type": "hello", "api_key": "sa_…", "trunk_id": 5}

and once the key is checked (a workspace API key whose role may manage telephony, for a trunk
of that workspace; checked in a thread, off the call loop) it gets {"type": "ready"}. While a
line is idle, the next call on that trunk goes to it instead of the built-in receptionist:

    → {"type": "call", "call_id", "caller", "did", "codec", "sample_rate"}
    → binary: the caller's audio, 20 ms frames of 16-bit mono PCM at sample_rate
    → {"type": "dtmf", "digit": "5"}
    → {"type": "transfer", "accepted": bool, "status": int|null, "reason": str}
    → {"type": "hangup"}                      the call is over; the line is idle again
    ← binary: audio to play (same format; queued and paced by the engine)
    ← {"type": "say", "text": "…"}            our TTS speaks it
    ← {"type": "stop"}                        barge-in: stop what is playing
    ← {"type": "transfer", "extension": "102"}
    ← {"type": "hangup"}

No idle line for the trunk: the receptionist answers as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telephony.receptionist.dialogue import Understanding

if TYPE_CHECKING:
    from telephony.call_control import EngineCallControl
    from telephony.calls.call import Call
    from telephony.config import EngineConfig

log = logging.getLogger("telephony.external_agent")

HELLO_TIMEOUT = 10.0


def authenticate_key(raw_key: str) -> tuple[int, bool] | None:
    """(tenant id, may take calls) for a workspace API key, or None. Runs in a thread."""
    from django.db import connections

    from smartalex.tenancy.roles import Action, role_can
    from smartalex.tenancy.services import api_key_authenticate

    try:
        key = api_key_authenticate(raw_key=raw_key)
        if key is None:
            return None
        return key.tenant_id, role_can(key.role, Action.MANAGE_TELEPHONY)
    finally:
        connections.close_all()


class Line:
    def __init__(self, websocket: Any, trunk_id: int) -> None:
        self.websocket = websocket
        self.trunk_id = trunk_id
        self.busy = False
        self.closed = asyncio.Event()


class ExternalAgentServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        config: Callable[[], EngineConfig],
        authenticate: Callable[[str], tuple[int, bool] | None] = authenticate_key,
    ) -> None:
        self.host = host
        self.port = port
        self._config = config
        self._authenticate = authenticate
        self._lines: list[Line] = []
        self._server: Any = None

    async def start(self) -> int:
        from websockets.asyncio.server import serve

        self._server = await serve(self._connection, self.host, self.port, max_size=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("external agents on ws://%s:%s", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def claim(self, trunk_id: int) -> Line | None:
        """An idle line for the trunk, now busy; None when no runtime is waiting."""
        for line in self._lines:
            if line.trunk_id == trunk_id and not line.busy and not line.closed.is_set():
                line.busy = True
                return line
        return None

    async def _connection(self, websocket: Any) -> None:
        line = await self._hello(websocket)
        if line is None:
            return
        self._lines.append(line)
        try:
            await websocket.wait_closed()
        finally:
            line.closed.set()
            self._lines.remove(line)

    async def _hello(self, websocket: Any) -> Line | None:
        try:
            hello = json.loads(await asyncio.wait_for(websocket.recv(), HELLO_TIMEOUT))
            key, trunk_id = str(hello["api_key"]), int(hello["trunk_id"])
        except Exception:  # noqa: BLE001 — anything but a well-formed hello ends the connection
            await _refuse(websocket, "send {type: hello, api_key, trunk_id} first")
            return None
        found = await asyncio.to_thread(self._authenticate, key)
        trunk = self._config().trunks.get(trunk_id)
        # Another workspace's trunk and a missing one get the same answer.
        if found is None or trunk is None or trunk.tenant_id != found[0]:
            await _refuse(websocket, "unknown API key or trunk")
            return None
        if not found[1]:
            await _refuse(websocket, "this key's role may not take calls")
            return None
        await websocket.send(json.dumps({"type": "ready", "trunk_id": trunk_id}))
        return Line(websocket, trunk_id)


async def _refuse(websocket: Any, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send(json.dumps({"type": "error", "message": message}))
        await websocket.close(code=4401, reason=message[:100])


class ExternalAgent:
    """Runs one call for a remote runtime: the same `CallControl` the receptionist gets."""

    def __init__(self, *, line: Line, call: Call, control: EngineCallControl, tts: Any) -> None:
        self.line = line
        self.call = call
        self.control = control
        self.tts = tts
        self.understanding = Understanding(method="external")
        self._transferring = False

    async def run(self) -> Understanding:
        websocket = self.line.websocket
        call = self.call
        await websocket.send(
            json.dumps(
                {
                    "type": "call",
                    "call_id": call.ref,
                    "caller": call.caller,
                    "did": call.did,
                    "codec": call.codec_name,
                    "sample_rate": self.control.sample_rate,
                }
            )
        )
        tasks = [
            asyncio.create_task(self._audio_out()),
            asyncio.create_task(self._digits_out()),
            asyncio.create_task(self._commands_in()),
        ]
        try:
            ended = asyncio.create_task(call.ended.wait())
            await asyncio.wait([tasks[2], ended], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if self._transferring:  # a REFER's success ends the call: still report it to the runtime
                await asyncio.wait([tasks[2]], timeout=5)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await websocket.send(json.dumps({"type": "hangup"}))
            self.line.busy = False
        if not call.is_over and self.line.closed.is_set():
            await self.control.hangup()  # the runtime went away mid-call
        return self.understanding

    async def _audio_out(self) -> None:
        async for frame in self.control.audio_frames():
            await self.line.websocket.send(frame)

    async def _digits_out(self) -> None:
        async for digit in self.control.dtmf():
            await self.line.websocket.send(json.dumps({"type": "dtmf", "digit": digit}))

    async def _commands_in(self) -> None:
        async for message in self.line.websocket:
            if isinstance(message, bytes):
                self.control.play(message)
                continue
            try:
                command = json.loads(message)
            except ValueError:
                continue
            kind = command.get("type")
            if kind == "say":
                with contextlib.suppress(Exception):
                    prompt = await self.tts.render(str(command.get("text", "")))
                    self.control.play(prompt.pcm_at(self.control.sample_rate))
            elif kind == "stop":
                self.control.stop_playback()
            elif kind == "transfer":
                extension = str(command.get("extension", ""))
                self._transferring = True
                outcome = await self.control.transfer(extension)
                self._transferring = False
                if outcome.accepted:
                    self.understanding.extension = extension
                await self.line.websocket.send(
                    json.dumps(
                        {
                            "type": "transfer",
                            "accepted": outcome.accepted,
                            "status": outcome.status,
                            "reason": outcome.reason,
                        }
                    )
                )
                if outcome.accepted:
                    return
            elif kind == "hangup":
                self.understanding.hangup_reason = "external_agent"
                await self.control.hangup()
                return
