"""Curation steps: each changes what it should, reports counts and examples, and no more."""

from __future__ import annotations

import pytest

from tuitune.core.data.curation import Item, curate, normalize_whitespace, strip_html
from tuitune.core.data.pii import find_pii, luhn_ok, redact


def _msgs(user: str, answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    }


def _items(rows: list[dict]) -> list[Item]:
    return [Item(f"f.jsonl:{i + 1}", r) for i, r in enumerate(rows)]


def test_strip_html_keeps_code_and_comparisons() -> None:
    assert strip_html("<p>Hello&nbsp;<b>world</b></p>") == "Hello\xa0world\n"
    assert strip_html("if a < b and List<int> x") == "if a < b and List<int> x"
    # a script is code, not stray markup: kept (the answer may be the script)
    assert strip_html("<script>alert(1)</script>ok") == "<script>alert(1)</script>ok"


def test_strip_html_leaves_inline_and_fenced_code_alone() -> None:
    assert strip_html("use the `<hr>` HTML tag") == "use the `<hr>` HTML tag"
    fenced = 'Page:\n```html\n<div id="a">\n  <p>hi</p>\n</div>\n<script>go();</script>\n```\n'
    assert strip_html(fenced + "<b>done</b>") == fenced + "done"
    assert strip_html("~~~\n<br>\n~~~") == "~~~\n<br>\n~~~"
    jsx = "return <Button className={s.x}>Go</Button>;"
    assert strip_html(jsx) == jsx
    page = "<!DOCTYPE html>\n<html><body><p>x</p></body></html>"
    assert strip_html(page) == page
    assert strip_html("Hello <b>there</b> and `<i>` stays") == "Hello there and `<i>` stays"


def test_whitespace_keeps_indentation() -> None:
    assert normalize_whitespace("  a   b  \r\n\n\n\n    c\t\td ") == "a b\n\n    c d"


def test_whitespace_leaves_code_and_json_alone() -> None:
    fenced = "```python\nx    = 1   # aligned\nlong = 2\n```"
    assert normalize_whitespace(f"Run:   this\n\n{fenced}\n\n\n\nok  ") == (
        f"Run: this\n\n{fenced}\n\nok"
    )
    assert normalize_whitespace("set `a  =  b`   then   go") == "set `a  =  b` then go"
    call = '{"name": "f",  "arguments": {"q": "two  spaces"}}'
    assert normalize_whitespace(call) == call
    assert normalize_whitespace(f"It  said {call}  ok") == f"It said {call} ok"
    js = "let  a = 1;\nlet  b = 2;"  # looks like code without fences: left whole
    assert normalize_whitespace(js) == js
    assert normalize_whitespace("a  [not json  here") == "a [not json here"


def test_whitespace_json_scan_stays_linear_on_stray_brackets() -> None:
    import time

    start = time.perf_counter()
    assert normalize_whitespace("[" * 100_000 + "  x") == "[" * 100_000 + " x"
    # every failed parse costs a scan of the text (the error's line number): the misses
    # are capped, or this row alone would take tens of seconds
    unclosed = '{"a": "' + "x  " * 50_000 + " {" * 50_000
    assert normalize_whitespace(unclosed).startswith('{"a": "x x x')
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail bob.smith+x@mail.example.org now", "email"),
        ("card 4111 1111 1111 1111 ok", "card"),
        ("card 5500-0000-0000-0004.", "card"),
        ("server at 192.168.10.25 down", "ip"),
        ("v6 2001:db8::8a2e:370:7334 here", "ip"),
        ("call +44 20 7946 0958 today", "phone"),
        ("call (555) 123-4567", "phone"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "api_key"),
        ("token ghp_" + "a" * 36, "api_key"),
        ("AKIAIOSFODNN7EXAMPLE", "api_key"),
        ('api_key = "Zx9fQ2mT7vB4nK8pL3wR"', "api_key"),
    ],
)
def test_pii_kinds_found(text: str, kind: str) -> None:
    assert [f.kind for f in find_pii(text)] == [kind]
    assert f"[{kind.upper()}]" in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 failed",  # fails Luhn
        "version 3.12 released in 2024",
        "the year 1999 and 12 apples",
        "ISBN 978-3-16-148410-0",
        "price 1,234,567.89 dollars",
    ],
)
def test_pii_false_positives_avoided(text: str) -> None:
    assert find_pii(text) == []


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_curate_reports_each_step() -> None:
    rows = [
        _msgs("<b>Hi</b>   there", "Hello, write to ada@example.com"),
        _msgs("What is 2+2?", "4"),
        _msgs("What is 2+2?", "4"),  # exact duplicate
        _msgs("", "orphan answer"),  # empty user turn
        {"messages": [{"role": "assistant", "content": "starts with assistant"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "q"}]},
    ]
    items, report = curate(_items(rows), "messages")
    assert report.rows_in == 6 and report.rows_out == len(items) == 2
    html = report.step("strip_html")
    assert html.changed == 1 and html.examples[0]["origin"] == "f.jsonl:1"
    assert "<b>" in html.examples[0]["before"] and "<b>" not in html.examples[0]["after"]
    assert report.step("normalize_whitespace").changed == 1
    broken = report.step("drop_broken")
    assert broken.dropped == 3
    assert set(broken.details["reasons"]) == {
        "empty user turn",
        "first turn is assistant, expected user",
        "no assistant turn",
    }
    assert report.step("pii").changed == 1 and report.step("pii").details["kinds"] == {"email": 1}
    assert "[EMAIL]" in items[0].row["messages"][1]["content"]
    assert report.step("dedup_exact").dropped == 1
    assert report.step("token_length").enabled is False


def test_pii_drop_mode() -> None:
    items, report = curate(
        _items([_msgs("my ip is 10.1.2.3", "ok"), _msgs("hi", "ok")]), "messages", {"pii": "drop"}
    )
    assert len(items) == 1 and report.step("pii").dropped == 1


def test_near_duplicates_removed() -> None:
    base = "Please extract the name, the city and the age of the person described in this text"
    rows = [
        _msgs(base + " about Ada.", "A long answer about Ada who lives in London and is 36."),
        _msgs(base + " about Ada!", "A long answer about Ada who lives in London and is 36."),
        _msgs("Something entirely different about the weather in Paris today", "Sunny."),
    ]
    items, report = curate(_items(rows), "messages", {"dedup_exact": False})
    assert len(items) == 2
    near = report.step("dedup_near")
    assert near.dropped == 1 and "near-duplicate of f.jsonl:1" in near.examples[0]["reason"]


def test_steps_can_be_turned_off() -> None:
    rows = [_msgs("<i>x</i>", "y"), _msgs("<i>x</i>", "y")]
    items, report = curate(
        _items(rows), "messages", {"strip_html": False, "dedup_exact": False, "dedup_near": False}
    )
    assert len(items) == 2 and items[0].row["messages"][0]["content"] == "<i>x</i>"
    assert report.step("strip_html").summary().endswith("off")


def test_unknown_option_refused() -> None:
    from tuitune.core.errors import TuituneError

    with pytest.raises(TuituneError, match="unknown curation option"):
        curate([], "messages", {"dedupe": True})


def test_token_length_filter(tiny_model_plain) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    rows = [_msgs("short", "answer"), _msgs("long " * 200, "answer")]
    items, report = curate(_items(rows), "messages", tokenizer=tok, max_length=64)
    assert len(items) == 1 and report.step("token_length").dropped == 1
    assert "> 64" in report.step("token_length").examples[0]["reason"]


def test_preference_and_text_broken_rows() -> None:
    rows = [
        {"prompt": "q", "chosen": "same", "rejected": "same"},
        {"prompt": "q", "chosen": "a", "rejected": ""},
        {"prompt": "q", "chosen": "a", "rejected": "b"},
    ]
    items, report = curate(_items(rows), "preference")
    assert len(items) == 1 and report.step("drop_broken").dropped == 2
    items, _ = curate(_items([{"text": "  "}, {"text": "x"}]), "text")
    assert [it.row["text"] for it in items] == ["x"]
