from telephony.receptionist.digits import DigitCollector


def test_digits_complete_at_the_longest_extension():
    keys = DigitCollector(["101", "102"])
    assert [keys.press(d, 0.0) for d in "102"] == [None, None, "102"]
    longer = DigitCollector(["101", "1020"])
    assert [longer.press(d, 0.0) for d in "1020"] == [None, None, None, "1020"]


def test_hash_ends_a_number_and_star_clears_it():
    keys = DigitCollector(["101", "1011"])
    assert keys.press("1", 0) is None
    assert keys.press("*", 0) is None
    assert [keys.press(d, 0) for d in "101#"] == [None, None, None, "101"]
    assert keys.press("#", 0) is None  # nothing typed


def test_two_seconds_without_a_key_ends_the_number():
    keys = DigitCollector(["101", "1011"])
    for d in "101":
        keys.press(d, 10.0)
    assert keys.next_deadline() == 12.0
    assert keys.handle_timeout(11.9) is None
    assert keys.handle_timeout(12.0) == "101"
    assert keys.next_deadline() is None


def test_digits_no_extension_starts_with_end_at_once():
    keys = DigitCollector(["101", "102"])
    assert keys.press("0", 0) == "0"  # the operator, without waiting for the timeout
    assert keys.press("9", 0) == "9"
    assert keys.press("A", 0) is None
