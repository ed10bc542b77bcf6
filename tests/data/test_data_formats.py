"""Format detection (with confidence and reason) and conversion to TRL's standard forms."""

from __future__ import annotations

import pytest

from tuitune.core.data.formats import RowError, convert_row, detect_format, detect_row

ALPACA = {"instruction": "Add", "input": "2 and 3", "output": "5", "system": "Be terse."}
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "sys"},
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "hello"},
    ]
}
SHAREGPT_ROLE = {
    "conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
}
OPENAI = {
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": "hello"},
    ]
}
PC = {"prompt": "2+2=", "completion": "4"}
PC_CHAT = {
    "prompt": [{"role": "user", "content": "2+2?"}],
    "completion": [{"role": "assistant", "content": "4"}],
}
TEXT = {"text": "Once upon a time."}
PREF = {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}
PREF_IMPLICIT = {
    "chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
    "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}],
}
KTO = {"prompt": "Sky?", "completion": "Blue.", "label": True}


@pytest.mark.parametrize(
    ("row", "name"),
    [
        (ALPACA, "alpaca"),
        (SHAREGPT, "sharegpt"),
        (SHAREGPT_ROLE, "sharegpt"),
        (OPENAI, "messages"),
        (PC, "prompt_completion"),
        (PC_CHAT, "prompt_completion"),
        (TEXT, "text"),
        (PREF, "preference"),
        (PREF_IMPLICIT, "preference"),
        (KTO, "unpaired_preference"),
    ],
)
def test_detect_every_format(row: dict, name: str) -> None:
    assert detect_row(row) == name
    guess = detect_format([row] * 5)
    assert guess.name == name and guess.confidence == 1.0 and guess.known
    assert "5/5" in guess.reason


def test_alpaca_to_messages() -> None:
    out = convert_row({**ALPACA, "history": [["q1", "a1"]]}, "alpaca")
    assert out == {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "Add\n\n2 and 3"},
            {"role": "assistant", "content": "5"},
        ]
    }


def test_sharegpt_roles_are_mapped() -> None:
    out = convert_row(SHAREGPT, "sharegpt")["messages"]
    assert [m["role"] for m in out] == ["system", "user", "assistant"]
    assert convert_row(SHAREGPT_ROLE, "sharegpt")["messages"][1]["content"] == "yo"


def test_openai_content_parts_become_text() -> None:
    assert convert_row(OPENAI, "messages")["messages"][0] == {"role": "user", "content": "hi"}


def test_implicit_prompt_is_extracted() -> None:
    out = convert_row(PREF_IMPLICIT, "preference")
    assert out["prompt"] == [{"role": "user", "content": "Sky?"}]
    assert out["chosen"] == [{"role": "assistant", "content": "Blue."}]


def test_kto_label_kept() -> None:
    assert convert_row(KTO, "unpaired_preference")["label"] is True


@pytest.mark.parametrize(
    ("row", "fmt", "msg"),
    [
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages", "role 'wizard'"),
        ({"messages": "hi"}, "messages", "expected a list"),
        ({"conversations": [{"from": "gpt"}, 3]}, "sharegpt", "expected an object"),
        ({"instruction": "x"}, "alpaca", "without 'instruction' and 'output'"),
        (
            {"prompt": "x", "completion": [{"role": "assistant", "content": "y"}]},
            "prompt_completion",
            "mix",
        ),
        ({"text": {"a": 1}}, "text", "expected text"),
    ],
)
def test_broken_rows_raise_row_error(row: dict, fmt: str, msg: str) -> None:
    with pytest.raises(RowError, match=msg):
        convert_row(row, fmt)


def test_unknown_schema_names_columns_and_nearest() -> None:
    guess = detect_format([{"question": "Sky?", "answer": "Blue"}] * 3)
    assert guess.name == "unknown" and not guess.known
    assert guess.columns == ["question", "answer"]
    assert guess.nearest == "prompt_completion"
    assert guess.sample == {"question": "Sky?", "answer": "Blue"}
    assert "question" in guess.reason


def test_mixed_formats_are_reported() -> None:
    guess = detect_format([ALPACA] * 8 + [SHAREGPT] * 2)
    assert guess.name == "alpaca" and guess.confidence == 0.8
    assert guess.mixed == ["sharegpt"] and "2 sharegpt" in guess.reason
