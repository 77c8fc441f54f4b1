"""A call's outcome and transfer in the words a customer (or support) reads on the health page."""

from __future__ import annotations

from telephony.events import transfer_outcome

from .models import Call, CallOutcome

# What the PBX's final code for a transfer means, in the troubleshooting guide's terms.
TRANSFER_STATUS_WORDS = {
    404: "the extension does not exist on the PBX, or the PBX SIP Domain is wrong",
    408: "the PBX gave no final answer in time",
    480: "the extension is not available",
    484: "the extension number is incomplete",
    486: "the extension is busy",
    487: "the caller hung up first",
    603: "the extension declined",
}


def call_transfer_outcome(call: Call) -> str | None:
    """accepted | refused | failed | timeout for the call's last transfer attempt; None without one."""
    if not call.transfer_target:
        return None
    status = call.transfer_status
    # The record keeps no `accepted` flag: no code means the PBX took the caller and ended the dialog.
    return transfer_outcome(accepted=status is None or status < 300, status=status)


def outcome_in_words(call: Call) -> str:
    words = CallOutcome(call.outcome).label if call.outcome in CallOutcome.values else call.outcome
    if call.outcome == CallOutcome.REJECTED and call.sip_status:
        words += f": SmartAlex answered {call.sip_status} {call.reason}".rstrip()
    return words


def transfer_in_words(call: Call) -> str:
    """Empty without a transfer; else where to and what the PBX said, with its code."""
    outcome = call_transfer_outcome(call)
    if outcome is None:
        return ""
    status, reason = call.transfer_status, call.transfer_reason.strip()
    code = f"{status} {reason}".strip() if status else ""
    in_brackets = f" ({code})" if code else ""
    if outcome == "accepted":
        return f"to {call.transfer_target}: accepted by the PBX{in_brackets}"
    if outcome == "timeout":  # the engine's own 408: the PBX gave no final answer in time
        return f"to {call.transfer_target}: failed, {TRANSFER_STATUS_WORDS[408]}{in_brackets}"
    meaning = TRANSFER_STATUS_WORDS.get(status, "")
    words = f"to {call.transfer_target}: failed, the PBX answered {code}"
    return words + (f" ({meaning})" if meaning else "")
