"""Files of the shapes other tools publish load as what they are, and nothing is dropped silently.

The fixtures under tests/fixtures/data are tuitune's own small files written in the shapes of
LLaMA-Factory's data/ demos (with a dataset_info.json), OpenAI's chat fine-tuning format
(tools, tool_calls, weight), TRL's unpaired preference and ShareGPT files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.data.prepare import prepare_data
from tuitune.core.data.reading import read_and_convert
from tuitune.core.errors import TuituneError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
LF = FIXTURES / "llamafactory"


def _prepare(tmp_path: Path, *paths: Path, **kw):
    return prepare_data(list(paths), tmp_path / "out", val_ratio=0, **kw)


def _rows(*paths: Path, **kw) -> tuple[list[dict], object]:
    items, guess, _ = read_and_convert(list(paths), **kw)
    return [it.row for it in items], guess


@pytest.mark.parametrize(
    ("name", "source", "target"),
    [
        ("alpaca_demo.json", "alpaca", "messages"),
        ("identity.json", "alpaca", "messages"),
        ("glaive_toolcall_demo.json", "sharegpt", "messages"),
        ("dpo_demo.json", "preference", "preference"),
        ("kto_demo.json", "unpaired_preference", "unpaired_preference"),
        ("mllm_demo.json", "sharegpt", "messages"),
        ("c4_demo.jsonl", "text", "text"),
        ("wiki_demo.txt", "text", "text"),
        ("v1_sft_demo.jsonl", "messages", "messages"),
        ("v1_dpo_demo.jsonl", "preference", "preference"),
        ("v1_tool_use_demo.jsonl", "messages", "messages"),
    ],
)
def test_llamafactory_demos_detected_and_usable(
    tmp_path: Path, name: str, source: str, target: str
) -> None:
    p = _prepare(tmp_path, LF / name)
    assert (p.guess.name, p.data_format) == (source, target)
    assert p.train_rows == p.report.rows_in > 0


def test_kto_label_is_kept_and_forced_format_works(tmp_path: Path) -> None:
    rows, guess = _rows(LF / "kto_demo.json")
    assert guess.name == "unpaired_preference"
    assert [r["label"] for r in rows[:2]] == [True, False]
    assert rows[1]["completion"] == [
        {"role": "assistant", "content": "Ooh ooh ah ah! *giggle* I dunno!"}
    ]
    strings, _ = _rows(FIXTURES / "kto_string_labels.jsonl", fmt="unpaired_preference")
    assert [r["label"] for r in strings] == [True, False, True]
    p = _prepare(tmp_path, LF / "kto_demo.json")
    assert any("5 undesirable answers" in w for w in p.warnings)


def test_sharegpt_dpo_with_turn_objects(tmp_path: Path) -> None:
    rows, _ = _rows(LF / "dpo_demo.json")
    assert rows[0] == {
        "prompt": [{"role": "user", "content": "Name a primary colour."}],
        "chosen": [{"role": "assistant", "content": "Red is a primary colour."}],
        "rejected": [{"role": "assistant", "content": "Green, obviously, everyone knows that."}],
    }
    assert [m["role"] for m in rows[1]["prompt"]] == ["user", "assistant", "user"]
    v1, _ = _rows(LF / "v1_dpo_demo.jsonl")
    assert v1[0]["chosen"] == [{"role": "assistant", "content": "Cat."}]
    assert [m["role"] for m in v1[0]["prompt"]] == ["system", "user"]


def test_single_object_json_is_one_conversation() -> None:
    for fmt in ("auto", "sharegpt"):
        rows, guess = _rows(FIXTURES / "single_conversation.json", fmt=fmt)
        assert guess.name == "sharegpt" and len(rows) == 1
        assert [m["content"] for m in rows[0]["messages"]] == [
            "Give me a word that rhymes with cat.",
            "Hat.",
            "Another one?",
            "Mat.",
        ]


def test_value_content_parts_and_loss_weight(tmp_path: Path) -> None:
    rows, _ = _rows(LF / "v1_sft_demo.jsonl")
    assert rows[0]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
    ]
    assert rows[2]["messages"][1] == {"role": "assistant", "content": "No, you idiot.", "weight": 0}
    assert _prepare(tmp_path, LF / "v1_sft_demo.jsonl").train_rows == 3


def test_tool_columns_and_turns_are_kept(tmp_path: Path) -> None:
    rows, _ = _rows(LF / "glaive_toolcall_demo.json")
    msgs = rows[0]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[1]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}
    ]
    assert rows[0]["tools"][0]["function"]["name"] == "get_weather"
    openai, _ = _rows(FIXTURES / "openai_chat_tools.jsonl")
    call = openai[0]["messages"][1]
    assert call["tool_calls"][0]["id"] == "call_id"
    assert call["tool_calls"][0]["function"]["arguments"] == {
        "location": "San Francisco, USA",
        "format": "celsius",
    }
    assert openai[0]["messages"][2]["tool_call_id"] == "call_id"
    p = _prepare(tmp_path, FIXTURES / "openai_chat_tools.jsonl")
    assert any(k.startswith("tool calls:") for k in p.kept)
    assert any("'parallel_tool_calls': not used" in w for w in p.warnings)


def test_media_columns_are_named_and_image_tokens_flagged(tmp_path: Path) -> None:
    p = _prepare(tmp_path, LF / "mllm_demo.json")
    assert any("column 'images': dropped" in w for w in p.warnings)
    assert any("literal <image>" in w for w in p.warnings)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["warnings"] == p.warnings


def test_markup_inside_code_survives_curation(tmp_path: Path) -> None:
    p = _prepare(tmp_path, FIXTURES / "markup_in_code.jsonl")
    answers = [
        json.loads(line)["messages"][-1]["content"]
        for line in p.train_file.read_text().splitlines()
    ]
    assert answers[0] == "Use the `<hr>` HTML tag: it draws a horizontal rule."
    assert "<script>" in answers[1] and "onclick = () => alert('hi');" in answers[1]
    assert answers[2] == "Scraped text from a page."
    assert p.report.step("strip_html").changed == 1


def test_spacing_inside_code_and_json_survives_curation(tmp_path: Path) -> None:
    """Glaive-style tool rows: a fenced Python block with aligned spaces, inline code, a tool
    call, a JSON tool result and a JSON answer keep their spacing; the prose around is
    normalised."""
    source = json.loads((FIXTURES / "spacing_in_code.json").read_text())
    p = _prepare(tmp_path, FIXTURES / "spacing_in_code.json")
    rows = [json.loads(line) for line in p.train_file.read_text().splitlines()]
    code = source[0]["conversations"][1]["value"]
    answer = rows[0]["messages"][-1]["content"]
    assert answer == code.replace("first,   then", "first, then")
    assert "width  = max(len(r) for r in rows)   # widest row" in answer
    assert "`a  =  b`" in answer
    msgs = rows[1]["messages"]
    assert msgs[0]["content"] == "How many users signed up today?"
    assert msgs[1]["tool_calls"][0]["function"]["arguments"] == {
        "query": "SELECT  count(*)  FROM users"
    }
    assert msgs[2]["content"] == source[1]["conversations"][2]["value"]
    assert msgs[3]["content"] == source[1]["conversations"][3]["value"]
    step = p.report.step("normalize_whitespace")
    assert step.changed == 2 and step.details["kept_as_code"] == 2
    assert "2 rows have spacing in code or JSON: left alone" in step.summary()


def test_placeholders_are_flagged(tmp_path: Path) -> None:
    p = _prepare(tmp_path, LF / "identity.json")
    assert any("{{name}}, {{author}}" in w for w in p.warnings)


def test_dataset_info_folder_and_column_mapping(tmp_path: Path) -> None:
    p = _prepare(tmp_path, FIXTURES / "lf_single")
    assert p.guess.name == "alpaca" and p.train_rows == 2
    assert p.mappings == [
        "dataset_info.json entry 'faq' (alpaca) (instruction=question, output=reply)"
    ]
    with pytest.raises(TuituneError, match="lists 8 local datasets"):
        _prepare(tmp_path, LF)
    with pytest.raises(TuituneError, match="unknown data format.*--columns"):
        _prepare(tmp_path, FIXTURES / "question_answer.csv")
    q = _prepare(
        tmp_path, FIXTURES / "question_answer.csv", columns="prompt=question,completion=answer"
    )
    assert q.guess.name == "prompt_completion" and q.train_rows == 3
    with pytest.raises(TuituneError, match="unknown column name 'answer'"):
        _prepare(tmp_path, FIXTURES / "question_answer.csv", columns="answer=completion")


def test_plain_text_documents(tmp_path: Path) -> None:
    rows, guess = _rows(FIXTURES / "notes.txt")
    assert guess.name == "text"
    assert [r["text"] for r in rows] == [
        "First document, line one.\nStill the first document.",
        "Second document.",
        "Third document after two blank lines.",
    ]
    lines, _ = _rows(LF / "wiki_demo.txt")
    assert len(lines) == 3 and lines[0]["text"].startswith("Anarchism")
    whole, _ = _rows(FIXTURES / "notes.txt", text_unit="document")
    assert len(whole) == 1


def test_nan_completion_is_refused() -> None:
    with pytest.raises(TuituneError, match=r"nan_completion.jsonl:2: completion is NaN"):
        _rows(FIXTURES / "nan_completion.jsonl")


def test_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "stream.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(TuituneError, match="not a regular file"):
        _rows(fifo)


def test_deep_json_is_a_row_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TuituneError, match="nested too deeply"):
        _rows(deep)


def test_duplicates_collapsing_warn(tmp_path: Path) -> None:
    p = _prepare(tmp_path, FIXTURES / "duplicates.jsonl")
    assert p.train_rows == 1
    assert any("49 of 50 rows were duplicates" in w for w in p.warnings)


def test_curation_that_removes_everything_carries_its_report(tmp_path: Path) -> None:
    from tuitune.core.data.curation import CurationEmptyError

    bad = tmp_path / "empty_answers.jsonl"
    bad.write_text('{"instruction": "a", "output": ""}\n{"instruction": "b", "output": " "}\n')
    with pytest.raises(CurationEmptyError) as err:
        _prepare(tmp_path, bad)
    assert "Drop empty or role-broken rows: 2" in str(err.value)
    assert err.value.report.step("drop_broken").details["reasons"] == {"empty assistant answer": 2}
