"""PII findings with their exact spans, the length bounds of cards and phones, hosts that are
skipped without hiding the next one, overlaps, and the step's counts (mutmut's survivors)."""

from __future__ import annotations

import pytest

from tuitune.core.data.curation import Item, curate
from tuitune.core.data.pii import Finding, find_pii, redact

MIXED = (
    "Call +44 20 7946 0958 or mail ada@example.com from 10.0.0.5, "
    "key sk-proj-abcdefghijklmnopqrstuvwx1234."
)


def test_findings_carry_exact_spans_in_text_order() -> None:
    assert find_pii(MIXED) == [
        Finding("phone", 5, 21, "+44 20 7946 0958"),
        Finding("email", 30, 45, "ada@example.com"),
        Finding("ip", 51, 59, "10.0.0.5"),
        Finding("api_key", 65, 101, "sk-proj-abcdefghijklmnopqrstuvwx1234"),
    ]
    assert redact(MIXED) == "Call [PHONE] or mail [EMAIL] from [IP], key [API_KEY]."
    for f in find_pii(MIXED):
        assert MIXED[f.start : f.end] == f.text


def test_a_key_assignment_redacts_the_value_only() -> None:
    text = 'password: "Zx9fQ2mT7vB4nK8pL3wR" then bob@example.org'
    assert find_pii(text) == [
        Finding("api_key", 11, 31, "Zx9fQ2mT7vB4nK8pL3wR"),
        Finding("email", 38, 53, "bob@example.org"),
    ]
    assert redact(text) == 'password: "[API_KEY]" then [EMAIL]'


def test_cards_of_13_and_19_digits_and_not_one_repeated_digit() -> None:
    assert find_pii("4222222222222") == [Finding("card", 0, 13, "4222222222222")]
    assert find_pii("pay 6011000000000000001 now") == [
        Finding("card", 4, 23, "6011000000000000001")
    ]
    assert find_pii("0000000000000") == []  # passes Luhn, but no card is one digit repeated
    assert redact("card 4222 2222 2222 2 ok") == "card [CARD] ok"


def test_phones_of_7_and_15_digits() -> None:
    assert find_pii("call 12 34 567 now") == [Finding("phone", 5, 14, "12 34 567")]
    assert find_pii("+123 4567 8901 2346") == [Finding("phone", 0, 19, "+123 4567 8901 2346")]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("127.0.0.1 and 10.0.0.5", "10.0.0.5"),  # loopback skipped, the next host kept
        ("0.0.0.0 and 10.0.0.7", "10.0.0.7"),  # unspecified skipped
        ("999.1.1.1 then 10.0.0.6", "10.0.0.6"),  # not an address, then one
        ("a::b then 2001:db8::1", "2001:db8::1"),  # too short for an address, then one
        ("ab:cd:ef then 2001:db8::2", "2001:db8::2"),  # not IPv6, then IPv6
        ("fe8::1", "fe8::1"),  # six characters, two colons
    ],
)
def test_skipped_candidates_do_not_hide_the_next_address(text: str, found: str) -> None:
    (f,) = find_pii(text)
    assert f.kind == "ip" and f.text == found and text[f.start : f.end] == found


def test_loopback_and_unspecified_alone_are_not_pii() -> None:
    assert find_pii("127.0.0.1") == [] and find_pii("0.0.0.0") == []


def test_an_api_key_wins_over_a_card_inside_it() -> None:
    assert find_pii("sk_live_4111111111111111abcd") == [
        Finding("api_key", 0, 28, "sk_live_4111111111111111abcd")
    ]


def test_redact_uses_the_findings_it_is_given() -> None:
    assert redact("bob@example.org", []) == "bob@example.org"
    assert redact("ab cd", [Finding("email", 3, 5, "cd")]) == "ab [EMAIL]"


def _row(user: str, answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    }


def _rows() -> list[Item]:
    return [
        Item("f.jsonl:1", _row("mail ada@example.com or bob@example.org", "ok")),
        Item("f.jsonl:2", _row("call +44 20 7946 0958", "from 10.0.0.5")),
        Item("f.jsonl:3", _row("nothing here", "fine")),
    ]


def test_redact_mode_counts_rows_kinds_and_shows_before_and_after() -> None:
    items, report = curate(_rows(), "messages", {"pii": "redact"})
    assert len(items) == 3
    step = report.step("pii")
    assert step.changed == 2 and step.dropped == 0
    assert step.details["kinds"] == {"email": 2, "phone": 1, "ip": 1}
    first, second = step.examples
    assert first["origin"] == "f.jsonl:1" and first["reason"] == "contains email"
    assert "ada@example.com" in first["before"] and "[EMAIL] or [EMAIL]" in first["after"]
    assert second["origin"] == "f.jsonl:2" and second["reason"] == "contains ip, phone"
    assert items[1].row["messages"][1]["content"] == "from [IP]"


def test_drop_mode_counts_every_dropped_row() -> None:
    items, report = curate(_rows(), "messages", {"pii": "drop"})
    assert [i.origin for i in items] == ["f.jsonl:3"]
    step = report.step("pii")
    assert step.dropped == 2 and step.changed == 0
    assert [e["origin"] for e in step.examples] == ["f.jsonl:1", "f.jsonl:2"]
    assert step.examples[1]["reason"] == "contains ip, phone"
    assert "+44 20 7946 0958" in step.examples[1]["before"]


def test_an_ipv6_address_inside_text_has_its_exact_span() -> None:
    text = "v6 2001:db8::8a2e:370:7334 here"
    assert find_pii(text) == [Finding("ip", 3, 26, "2001:db8::8a2e:370:7334")]
    assert redact(text) == "v6 [IP] here"


def test_a_digit_run_that_is_no_phone_does_not_hide_the_next_phone() -> None:
    text = "ISBN 978-3-16-148410-0 or call 12 34 567 today"
    (f,) = find_pii(text)
    assert f.kind == "phone" and f.text == "12 34 567" and text[f.start : f.end] == f.text
