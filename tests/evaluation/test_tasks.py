"""Task scorers: each metric on replies that should and should not pass."""

from __future__ import annotations

import json

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.tasks import TASKS, get_task, normalize_text, score_all

REF = {"name": "Ada Lovelace", "age": 36, "city": "London", "job": "mathematician"}
EXACT = json.dumps(REF)


def score(task: str, pred: str, ref: object) -> dict[str, float]:
    return get_task(task).score(pred, ref)


def test_json_extract_exact_reply_scores_full_marks() -> None:
    assert score("json_extract", EXACT, REF) == {
        "exact_match": 1.0,
        "json_valid": 1.0,
        "schema_ok": 1.0,
        "field_accuracy": 1.0,
    }
    # whitespace layout does not matter, the reference may be a JSON string
    assert score("json_extract", json.dumps(REF, indent=2), EXACT)["exact_match"] == 1.0


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        # prose around the JSON: content right, format wrong
        (f"Here is the JSON:\n{EXACT}", (0.0, 0.0, 0.0, 1.0)),
        (f"```json\n{EXACT}\n```", (0.0, 0.0, 0.0, 1.0)),
        # age as a string: valid JSON, wrong type
        (json.dumps({**REF, "age": "36"}), (0.0, 1.0, 0.0, 1.0)),
        # keys out of order
        (
            json.dumps(
                {"age": 36, "name": "Ada Lovelace", "city": "London", "job": "mathematician"}
            ),
            (0.0, 1.0, 0.0, 1.0),
        ),
        # renamed keys: only name and age found
        (
            json.dumps(
                {"name": "Ada Lovelace", "age": 36, "location": "London", "occupation": "x"}
            ),
            (0.0, 1.0, 0.0, 0.5),
        ),
        # one wrong value
        (json.dumps({**REF, "city": "Paris"}), (0.0, 1.0, 1.0, 0.75)),
        # case differences count for field accuracy but not for exact match
        (json.dumps({**REF, "city": "london"}), (0.0, 1.0, 1.0, 1.0)),
        ("Ada Lovelace is 36 and lives in London.", (0.0, 0.0, 0.0, 0.0)),
        ("[1, 2]", (0.0, 0.0, 0.0, 0.0)),
        ("", (0.0, 0.0, 0.0, 0.0)),
    ],
)
def test_json_extract_failures(pred: str, expected: tuple[float, ...]) -> None:
    s = score("json_extract", pred, REF)
    assert (s["exact_match"], s["json_valid"], s["schema_ok"], s["field_accuracy"]) == expected


def test_text_scorers() -> None:
    assert score("exact_match", " Paris ", "Paris")["exact_match"] == 1.0
    assert score("exact_match", "paris", "Paris")["exact_match"] == 0.0
    assert score("normalized_match", "The Paris!", "paris")["normalized_match"] == 1.0
    assert score("contains", "It is Paris, of course.", "Paris")["contains"] == 1.0
    assert score("contains", "Parisian food", "Paris")["contains"] == 0.0
    assert score("regex", "Answer: 42", r"Answer: \d+")["regex_match"] == 1.0
    assert score("regex", "Answer: 42 maybe", r"Answer: \d+")["regex_match"] == 0.0
    assert normalize_text("  The  Quick, brown fox. ") == "quick brown fox"


def test_library_metrics() -> None:
    assert score("rouge_l", "the cat sat on the mat", "the cat sat on the mat")["rouge_l"] == 1.0
    assert 0.0 < score("rouge_l", "the cat sat", "the cat sat on the mat")["rouge_l"] < 1.0


def test_bleu_from_sacrebleu() -> None:
    pytest.importorskip("sacrebleu")
    assert score("bleu", "the cat sat on the mat", "the cat sat on the mat")[
        "bleu"
    ] == pytest.approx(1.0)
    assert score("bleu", "dogs bark", "the cat sat on the mat")["bleu"] < 0.1


def test_json_schema_and_validity() -> None:
    assert score("json_valid", '{"a": 1}', None)["json_valid"] == 1.0
    assert score("json_valid", "{'a': 1}", None)["json_valid"] == 0.0
    assert score("json_schema", '{"a": 2, "b": "y"}', {"a": 1, "b": "x"})["schema_ok"] == 1.0
    assert score("json_schema", '{"a": 2.5, "b": "y"}', {"a": 1, "b": "x"})["schema_ok"] == 0.0
    assert score("json_schema", '{"a": true, "b": "y"}', {"a": 1, "b": "x"})["schema_ok"] == 0.0


def test_score_all_keeps_per_example_values_aligned() -> None:
    task = get_task("json_extract")
    out = score_all(task, [EXACT, "nope", EXACT], [REF, REF, REF])
    assert out["exact_match"] == [1.0, 0.0, 1.0]
    assert set(out) == set(task.metrics)
    with pytest.raises(ValueError):
        score_all(task, [EXACT], [REF, REF])


def test_unknown_task_and_bad_reference_are_one_line_errors() -> None:
    with pytest.raises(TuituneError, match="unknown evaluation task"):
        get_task("nope")
    with pytest.raises(TuituneError, match="regular expression"):
        score("regex", "x", "(")
    with pytest.raises(TuituneError, match="JSON object"):
        score("json_extract", "{}", [1, 2])


def test_registry_headlines() -> None:
    assert get_task("json_extract").headline == "exact_match"
    for task in TASKS.values():
        assert task.metrics and task.description
