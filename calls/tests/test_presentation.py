"""A call's outcome and transfer in words, from records made from engine events."""

import pytest

from calls.presentation import call_transfer_outcome, outcome_in_words, transfer_in_words
from calls.tests.conftest import record_call

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("status", "ended", "outcome", "words"),
    [
        (200, "transferred", "accepted", "to 102: accepted by the PBX (200)"),
        (486, "caller_hung_up", "refused", "failed, the PBX answered 486 (the extension is busy)"),
        (603, "answered", "refused", "failed, the PBX answered 603 (the extension declined)"),
        (404, "answered", "refused", "does not exist on the PBX, or the PBX SIP Domain is wrong"),
        (408, "answered", "timeout", "failed, the PBX gave no final answer in time (408)"),
        (503, "answered", "failed", "failed, the PBX answered 503"),
    ],
)
def test_transfer_outcome_and_words(trunk, status, ended, outcome, words):
    call = record_call(trunk, outcome=ended, transfer_status=status)
    assert call_transfer_outcome(call) == outcome
    assert words in transfer_in_words(call)
    assert outcome_in_words(call) == ("Transferred" if status == 200 else "Transfer failed")


def test_a_call_without_transfer_has_no_transfer_words(trunk):
    call = record_call(trunk, outcome="answered", target="")
    assert call_transfer_outcome(call) is None and transfer_in_words(call) == ""
    assert outcome_in_words(call) == "Answered (ended by the agent)"
