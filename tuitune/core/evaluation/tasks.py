"""Task scorers: how one generated answer is judged against its reference.

A *task* names a scoring function that returns several per-example metrics (all in [0, 1],
higher is better); the first metric is the headline. Per-example values are kept, not only
means, so evaluation can bootstrap confidence intervals on paired before/after differences.

Library-backed metrics come from the libraries the field trusts and that work offline:
``rouge-score`` for ROUGE-L, ``sacrebleu`` for BLEU (never ``evaluate.load``: it needs a hub).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuitune.core.errors import TuituneError

ScoreFn = Callable[[str, Any], dict[str, float]]


@dataclass(frozen=True)
class Task:
    """A named scorer: ``score(prediction, reference) -> {metric: value in [0, 1]}``."""

    name: str
    description: str
    metrics: tuple[str, ...]
    score: ScoreFn
    reference: str  # what a reference is: "text", "regex" or "json"

    @property
    def headline(self) -> str:
        return self.metrics[0]


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise TuituneError(
            f"unknown evaluation task {name!r}", fix=f"use one of {', '.join(sorted(TASKS))}"
        ) from None


def score_all(task: Task, predictions: list[str], references: list[Any]) -> dict[str, list[float]]:
    """Per-example values of every metric of ``task`` (lists aligned with the inputs)."""
    out: dict[str, list[float]] = {m: [] for m in task.metrics}
    for pred, ref in zip(predictions, references, strict=True):
        scores = task.score(pred, ref)
        for m in task.metrics:
            out[m].append(float(scores[m]))
    return out


# ---- text ---------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(s: str) -> str:
    """SQuAD-style normalisation: lowercase, no punctuation, no articles, single spaces."""
    s = _ARTICLES.sub(" ", s.lower().translate(_PUNCT))
    return " ".join(s.split())


def _exact(pred: str, ref: Any) -> dict[str, float]:
    return {"exact_match": float(pred.strip() == str(ref).strip())}


def _normalized(pred: str, ref: Any) -> dict[str, float]:
    return {"normalized_match": float(normalize_text(pred) == normalize_text(str(ref)))}


def _contains(pred: str, ref: Any) -> dict[str, float]:
    """The reference (normalised) appears as whole words in the normalised prediction."""
    r = normalize_text(str(ref))
    return {"contains": float(bool(r) and f" {r} " in f" {normalize_text(pred)} ")}


def _regex(pred: str, ref: Any) -> dict[str, float]:
    try:
        pattern = re.compile(str(ref), re.DOTALL)
    except re.error as e:
        raise TuituneError(f"reference is not a valid regular expression: {e}") from None
    return {"regex_match": float(pattern.fullmatch(pred.strip()) is not None)}


def _rouge_l(pred: str, ref: Any) -> dict[str, float]:
    return {"rouge_l": _rouge_scorer().score(str(ref), pred)["rougeL"].fmeasure}


_ROUGE: Any = None


def _rouge_scorer() -> Any:
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return _ROUGE


def _bleu(pred: str, ref: Any) -> dict[str, float]:
    try:
        import sacrebleu
    except ImportError:
        raise TuituneError("BLEU needs sacrebleu", fix="pip install sacrebleu") from None
    refs = [str(r) for r in ref] if isinstance(ref, list) else [str(ref)]
    return {"bleu": sacrebleu.sentence_bleu(pred, refs).score / 100.0}


# ---- JSON ---------------------------------------------------------------------------------


def parse_strict(pred: str) -> tuple[bool, Any]:
    """The whole reply (surrounding whitespace aside) is one JSON value."""
    try:
        return True, json.loads(pred.strip())
    except (json.JSONDecodeError, ValueError):
        return False, None


def parse_lenient(pred: str) -> Any:
    """The first JSON object anywhere in the reply (prose or code fences around it)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", pred):
        try:
            obj, _ = decoder.raw_decode(pred, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(v)]


def schema_matches(obj: Any, reference: dict) -> bool:
    """Same keys in the same order, each value of the reference's JSON type."""
    return (
        isinstance(obj, dict)
        and list(obj) == list(reference)
        and all(_json_type(obj[k]) == _json_type(v) for k, v in reference.items())
    )


def _field_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()
    return a == b


def _json_reference(ref: Any) -> dict:
    if isinstance(ref, str):
        ok, ref = parse_strict(ref)
        if not ok:
            raise TuituneError("json_extract reference is not JSON")
    if not isinstance(ref, dict):
        raise TuituneError("json_extract reference must be a JSON object")
    return ref


def _json_extract(pred: str, ref: Any) -> dict[str, float]:
    """Format and content separately: a reply with the right facts in the wrong format
    scores on field_accuracy but not on json_valid/schema_ok/exact_match."""
    ref = _json_reference(ref)
    valid, obj = parse_strict(pred)
    valid = valid and isinstance(obj, dict)
    found = obj if valid else parse_lenient(pred)
    fields = (
        sum(k in found and _field_equal(found[k], v) for k, v in ref.items()) / len(ref)
        if isinstance(found, dict) and ref
        else 0.0
    )
    schema = valid and schema_matches(obj, ref)
    exact = schema and all(obj[k] == v for k, v in ref.items())
    return {
        "exact_match": float(exact),
        "json_valid": float(valid),
        "schema_ok": float(schema),
        "field_accuracy": float(fields),
    }


def _json_valid(pred: str, ref: Any) -> dict[str, float]:
    return {"json_valid": float(parse_strict(pred)[0])}


def _json_schema(pred: str, ref: Any) -> dict[str, float]:
    ok, obj = parse_strict(pred)
    return {"schema_ok": float(ok and schema_matches(obj, _json_reference(ref))), "json_valid": ok}


register(
    Task("exact_match", "reply equals the reference exactly", ("exact_match",), _exact, "text")
)
register(
    Task(
        "normalized_match",
        "equal after lowercasing and removing punctuation, articles and extra spaces",
        ("normalized_match",),
        _normalized,
        "text",
    )
)
register(
    Task(
        "contains",
        "the reference appears in the reply (normalised)",
        ("contains",),
        _contains,
        "text",
    )
)
register(
    Task("regex", "the whole reply matches the reference regex", ("regex_match",), _regex, "regex")
)
register(Task("rouge_l", "ROUGE-L F1 (rouge-score, stemmed)", ("rouge_l",), _rouge_l, "text"))
register(Task("bleu", "sentence BLEU / 100 (sacrebleu)", ("bleu",), _bleu, "text"))
register(Task("json_valid", "the whole reply is valid JSON", ("json_valid",), _json_valid, "json"))
register(
    Task(
        "json_schema",
        "valid JSON with the reference's keys (in order) and value types",
        ("schema_ok", "json_valid"),
        _json_schema,
        "json",
    )
)
register(
    Task(
        "json_extract",
        "strict JSON record: exact match, validity, schema (keys, order, types), field accuracy",
        ("exact_match", "json_valid", "schema_ok", "field_accuracy"),
        _json_extract,
        "json",
    )
)
