"""One call seen from its agent: the receptionist's `CallControl` on a live SIP call.

The agent plays PCM, hears the caller's 20 ms frames and digits, transfers and hangs up; the
`Call` behind it does the SIP and RTP. Both iterators end when the call does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from telephony.receptionist.receptionist import TransferOutcome

if TYPE_CHECKING:
    from telephony.calls.call import Call


class EngineCallControl:
    def __init__(self, call: Call) -> None:
        assert call.media is not None, "an answered call has media"
        self.call = call
        self.media = call.media
        self.sample_rate = call.media.codec.sample_rate

    def play(self, pcm: bytes) -> asyncio.Future[bool]:
        return self.media.play(pcm)

    def stop_playback(self) -> None:
        self.media.stop_playback()

    async def audio_frames(self) -> AsyncIterator[bytes]:
        queue = self.media.caller_audio
        while not self.call.is_over:
            frame = await queue.get()
            if not frame or self.call.bridge is not None:
                return
            yield frame

    async def dtmf(self) -> AsyncIterator[str]:
        while (digit := await self.call.digits.get()) is not None:
            yield digit

    async def transfer(self, extension: str) -> TransferOutcome:
        from telephony.calls.transfer import transfer_call

        return await transfer_call(self.call, extension)

    async def hangup(self) -> None:
        await self.call.hangup(outcome="answered", reason="agent")
