"""The built-in receptionist: greets the caller, hears who they want, and transfers the call.

Depends only on PCM audio and plain data (no SIP, no Django), so every part runs in a unit test:

- `tts`: prompts from espeak-ng, cached, at 8 and 16 kHz;
- `asr` + `grammar`: pocketsphinx against a grammar of the workspace's directory;
- `turns`: when the caller starts (barge-in) and stops talking;
- `dialogue`: the conversation as a pure state machine; `matching`: who was asked for;
- `receptionist`: ties them to a call through the `CallControl` protocol the call engine implements.
"""
