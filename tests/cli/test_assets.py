"""Bundled quickstart assets: counts, determinism, a real held-out split, scorer agreement."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tuitune.core.evaluation.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"


def _load(rel: str) -> list[dict]:
    return [json.loads(line) for line in (ASSETS / rel).read_text(encoding="utf-8").splitlines()]


def _make_assets():
    spec = importlib.util.spec_from_file_location(
        "make_assets", ROOT / "scripts" / "make_assets.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_regenerated_assets_match_the_committed_ones_byte_for_byte(tmp_path: Path) -> None:
    counts = _make_assets().build(tmp_path)
    for rel in counts:
        assert (tmp_path / rel).read_bytes() == (ASSETS / rel).read_bytes(), rel


def test_counts_meet_the_contract() -> None:
    assert len(_load("quickstart/train.jsonl")) >= 400
    assert len(_load("quickstart/eval.jsonl")) >= 50
    assert len(_load("quickstart/preference.jsonl")) >= 200
    general = _load("general/general.jsonl")
    assert 20 <= len(general) <= 60
    assert any("text" in r for r in general) and any("reference" in r for r in general)


def test_eval_set_is_held_out_from_training() -> None:
    train = _load("quickstart/train.jsonl") + [
        {"messages": r["prompt"] + r["chosen"]} for r in _load("quickstart/preference.jsonl")
    ]
    evals = _load("quickstart/eval.jsonl")
    train_answers = [json.loads(r["messages"][-1]["content"]) for r in train]
    train_values = {str(v) for a in train_answers for k, v in a.items() if k != "age"}
    train_names = {w for a in train_answers for w in a["name"].split()}
    for row in evals:
        ref = row["reference"]
        assert ref["city"] not in train_values and ref["job"] not in train_values
        assert not set(ref["name"].split()) & train_names
    train_texts = {r["messages"][-2]["content"] for r in train}
    assert not train_texts & {r["messages"][-1]["content"] for r in evals}


def test_training_answers_and_references_pass_the_scorer() -> None:
    task = get_task("json_extract")
    for row in _load("quickstart/train.jsonl")[:100]:
        ref = json.loads(row["messages"][-1]["content"])
        assert task.score(row["messages"][-1]["content"], ref)["exact_match"] == 1.0
    for row in _load("quickstart/eval.jsonl"):
        assert task.score(json.dumps(row["reference"]), row["reference"])["exact_match"] == 1.0
        assert row["messages"][-1]["role"] == "user"


def test_preference_pairs_prefer_the_strict_reply() -> None:
    task = get_task("json_extract")
    kinds = set()
    for row in _load("quickstart/preference.jsonl"):
        chosen = row["chosen"][0]["content"]
        rejected = row["rejected"][0]["content"]
        ref = json.loads(chosen)
        assert task.score(chosen, ref)["exact_match"] == 1.0
        s = task.score(rejected, ref)
        assert s["exact_match"] == 0.0
        kinds.add((s["json_valid"], s["schema_ok"]))
    assert len(kinds) >= 3  # prose/fences, wrong keys or types, wrong values


@pytest.mark.parametrize("rel", ["quickstart/train.jsonl", "quickstart/eval.jsonl"])
def test_prompts_stay_short(rel: str) -> None:
    for row in _load(rel):
        assert sum(len(m["content"]) for m in row["messages"]) < 600
