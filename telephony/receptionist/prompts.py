"""Everything the receptionist says, in one place (and rendered ahead of the call where fixed)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_GREETING = "Hello, thanks for calling. Who would you like to speak to?"
ASK_AGAIN = "Sorry, I didn't catch that. Who would you like to speak to? You can also key in their extension."
ASK_AFTER_NO = "Sorry about that. Who would you like to speak to?"
NO_OPERATOR = "Sorry, there's no operator available. Who would you like to speak to?"
PUTTING_THROUGH = "One moment, I'll put you through to someone who can help."
NOT_FOUND_GOODBYE = (
    "I'm sorry, I couldn't find the person you're looking for. Please try again later. Goodbye."
)
SILENCE_GOODBYE = "I haven't heard anything for a while, so I'll end the call now. Goodbye."
TIME_LIMIT_GOODBYE = "I'm sorry, this call has reached its time limit. Please call again. Goodbye."
YES_OR_NO = "Sorry, was that a yes or a no?"

# Said before every call could need them, so they come from the cache at once.
FIXED = (
    DEFAULT_GREETING,
    ASK_AGAIN,
    ASK_AFTER_NO,
    NO_OPERATOR,
    PUTTING_THROUGH,
    NOT_FOUND_GOODBYE,
    SILENCE_GOODBYE,
    TIME_LIMIT_GOODBYE,
    YES_OR_NO,
)


def transferring(name: str) -> str:
    return f"Transferring you to {name}."


def confirm(name: str) -> str:
    return f"Did you want {name}?"


def no_such_extension(digits: str) -> str:
    return f"Sorry, there's no extension {' '.join(digits)}. Who would you like to speak to?"


def unavailable_then_fallback(name: str) -> str:
    return f"Sorry, {name} isn't available right now. I'll put you through to someone who can help."


def unavailable_goodbye(name: str) -> str:
    return f"Sorry, {name} isn't available right now. Please try again later. Goodbye."


def which_one(labels: Sequence[str]) -> str:
    """ "Sarah in Sales or Sarah in Support?"; three or more: "A, B, or C?"."""
    if len(labels) == 2:
        return f"{labels[0]} or {labels[1]}?"
    return f"{', '.join(labels[:-1])}, or {labels[-1]}?"
