"""The mixture's effect: finding the same run without the mixture and comparing item by item."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tuitune.core.evaluation.forgetting import find_counterpart, mixture_effect, mixture_section
from tuitune.core.runs.rundir import RunDir


def _run(root: Path, name: str, *, mix: bool, qa: list[float], nll: list[float], lr=5e-4) -> RunDir:
    run = RunDir(root / name)
    run.data.mkdir(parents=True)
    run.eval.mkdir()
    run.spec.write_text(
        json.dumps(
            {"model": "/m/SmolLM2", "method": "lora", "learning_rate": lr, "max_steps": 80,
             "train_file": str(run.data / "train.jsonl"), "output_dir": str(run.root)}
        )
    )  # fmt: skip
    manifest = {
        "inputs": [{"path": "/data/train.jsonl", "sha256": "aa"}],
        "split": {"val_ratio": 0.1, "seed": 42},
        "mixture": {"share": 0.2, "general_rows_added": 108, "achieved_share": 0.2}
        if mix
        else None,
    }
    (run.data / "manifest.json").write_text(json.dumps(manifest))
    tokens = [10] * len(nll)
    results = {
        "task": "json_extract",
        "eval_file": "/e.jsonl",
        "general_file": "/g.jsonl",
        "n_eval": 4,
        "seed": 42,
        "general": {
            "qa_after": qa,
            "text_after": {"nll_sum": [x * 10 for x in nll], "tokens": tokens},
        },
        "per_example": {"task": {"valid_json": {"before": [0, 0, 0, 0], "after": [1, 1, 1, 1]}}},
    }
    (run.eval / "results.json").write_text(json.dumps(results))
    return run


def test_counterpart_found_and_effect_computed(tmp_path):
    qa_plain = [0.0] * 20 + [1.0] * 4
    qa_mix = [1.0] * 20 + [1.0] * 4
    plain = _run(tmp_path, "plain", mix=False, qa=qa_plain, nll=[3.0] * 8)
    mixed = _run(tmp_path, "mixed", mix=True, qa=qa_mix, nll=[2.5] * 8)
    _run(tmp_path, "other-lr", mix=False, qa=qa_plain, nll=[3.0] * 8, lr=1e-3)  # not a match
    assert find_counterpart(mixed).root == plain.root
    assert find_counterpart(plain).root == mixed.root  # found from either side
    effect = mixture_effect(plain)
    assert effect.with_mix.root == mixed.root and effect.without_mix.root == plain.root
    by = {c.metric: c for c in effect.comparisons}
    assert by["general_answers"].before == 4 / 24 and by["general_answers"].after == 1.0
    assert by["general_answers"].verdict == "improved"
    ppl = by["general_perplexity"]
    assert math.isclose(ppl.before, math.exp(3.0)) and math.isclose(ppl.after, math.exp(2.5))
    assert ppl.verdict == "improved"  # lower is better
    assert by["valid_json"].verdict == "no change"
    text = "\n".join(mixture_section(mixed))
    assert "Effect of the general-data mixture" in text and "108 general rows" in text


def test_no_counterpart_means_no_section(tmp_path):
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0, 0.0], nll=[2.0, 2.0])
    assert find_counterpart(mixed) is None
    assert mixture_section(mixed) == []


def test_report_shows_the_effect_when_both_runs_exist(tmp_path):
    from tuitune.core.evaluation.report import render_report
    from tuitune.core.evaluation.scoring import EvalResults

    _run(tmp_path, "plain", mix=False, qa=[0.0] * 6 + [1.0] * 2, nll=[3.0] * 4)
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0] * 8, nll=[2.5] * 4)
    data = json.loads((mixed.eval / "results.json").read_text())
    data["comparisons"] = [
        {"metric": "general_answers", "n": 8, "before": 0.5, "after": 1.0, "group": "forgetting"}
    ]
    text = render_report(mixed, None, EvalResults.from_dict(data), None)
    assert "108 general chat rows were mixed into training (20%" in text
    assert "### Effect of the general-data mixture" in text
    assert "| general questions answered | 8 | 25.0% | 100.0% |" in text
