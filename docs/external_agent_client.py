"""A minimal external voice runtime for SmartAlex calls (see docs/external-agents.md).

It waits for calls on one trunk, greets the caller with the engine's TTS, echoes the caller's
audio back (a stand-in for your speech-to-speech model), and transfers to the extension the
caller keys in followed by '#'.

    python docs/external_agent_client.py --url ws://127.0.0.1:8765 --key sa_xxx_yyy --trunk 5
"""

from __future__ import annotations

import argparse
import asyncio
import json

from websockets.asyncio.client import connect


async def serve_calls(url: str, api_key: str, trunk_id: int) -> None:
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"type": "hello", "api_key": api_key, "trunk_id": trunk_id}))
        ready = json.loads(await websocket.recv())
        if ready["type"] != "ready":
            raise SystemExit(f"refused: {ready}")
        print(f"waiting for calls on trunk {trunk_id}")
        digits = ""
        async for message in websocket:
            if isinstance(message, bytes):
                await websocket.send(message)  # echo: replace with your model's audio
                continue
            event = json.loads(message)
            if event["type"] == "call":
                print(
                    f"call {event['call_id']} from {event['caller']} ({event['codec']}, {event['sample_rate']} Hz)"
                )
                digits = ""
                await websocket.send(
                    json.dumps({"type": "say", "text": "Hello! Key an extension, then hash."})
                )
            elif event["type"] == "dtmf":
                if event["digit"] == "#" and digits:
                    await websocket.send(json.dumps({"type": "transfer", "extension": digits}))
                    digits = ""
                else:
                    digits += event["digit"]
            elif event["type"] == "transfer":
                print(f"transfer: {event}")
                if not event["accepted"]:
                    await websocket.send(json.dumps({"type": "say", "text": "That extension is busy."}))
            elif event["type"] == "hangup":
                print("call over; waiting for the next one")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="ws://127.0.0.1:8765")
    parser.add_argument("--key", required=True, help="a workspace API key (Admin or Owner role)")
    parser.add_argument("--trunk", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve_calls(args.url, args.key, args.trunk))


if __name__ == "__main__":
    main()
