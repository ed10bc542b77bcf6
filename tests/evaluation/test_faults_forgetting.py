"""The mixture's effect (core.evaluation.forgetting): which run is the counterpart, and every figure it
compares, with intervals (mutmut's survivors: loss, task and matching rules were untested)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from test_mixture_effect import _run

from tuitune.core.evaluation.forgetting import (
    find_counterpart,
    mixture_effect,
    mixture_of,
    mixture_section,
)
from tuitune.core.runs.rundir import RunDir


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _with_loss_and_task(run: RunDir, nll: list[float], tokens: list[int], task: list[float]):
    res = run.eval / "results.json"
    data = json.loads(res.read_text())
    data["loss"] = {"after": {"nll_sum": [n * t for n, t in zip(nll, tokens)], "tokens": tokens}}
    data["per_example"]["task"]["valid_json"]["after"] = task
    res.write_text(json.dumps(data))


def test_every_figure_is_compared_with_mix_minus_without(tmp_path: Path) -> None:
    plain = _run(tmp_path, "plain", mix=False, qa=[0.0, 1.0, 0.0, 1.0], nll=[3.0, 3.2, 2.8, 3.0])
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0, 1.0, 1.0, 1.0], nll=[2.0, 2.2, 1.8, 2.0])
    _with_loss_and_task(plain, [1.0, 2.0, 3.0, 4.0], [10, 0, 30, 40], [0, 0, 1, 0])
    _with_loss_and_task(mixed, [0.5, 1.0, 1.5, 2.0], [10, 0, 30, 40], [1, 1, 1, 1])
    effect = mixture_effect(mixed)  # found from the mixed side
    assert effect.without_mix.root == plain.root and effect.with_mix.root == mixed.root
    assert effect.mixture == mixture_of(mixed)
    by = {c.metric: c for c in effect.comparisons}
    assert list(by) == ["general_answers", "general_perplexity", "valid_json", "eval_loss"]
    assert by["valid_json"].before == 0.25 and by["valid_json"].after == 1.0
    assert by["valid_json"].group == "task" and by["valid_json"].n == 4
    loss = by["eval_loss"]
    # a row with 0 tokens counts its NLL sum once (max(tokens, 1)) and weighs nothing
    assert math.isclose(loss.before, (10 * 1 + 30 * 3 + 40 * 4) / 80)
    assert math.isclose(loss.after, (10 * 0.5 + 30 * 1.5 + 40 * 2) / 80)
    assert loss.higher_is_better is False and loss.group == "loss" and loss.verdict == "improved"
    ppl = by["general_perplexity"]
    assert math.isclose(ppl.before, math.exp(3.0)) and math.isclose(ppl.after, math.exp(2.0))
    assert ppl.group == "forgetting" and not ppl.higher_is_better
    for c in effect.comparisons:
        assert c.ci_low is not None and c.ci_low <= c.delta <= c.ci_high
    rows = effect.rows()
    assert rows[2][1:4] == ("4", "25.0%", "100.0%")
    assert all("[" in r[4] and "]" in r[4] for r in rows)  # the 95% interval is shown
    text = "\n".join(mixture_section(plain))
    assert f"run `{plain.id}`" in text and f"run `{mixed.id}`" in text
    assert "| without mixture | with mixture |" in text


def test_figures_of_different_lengths_are_not_compared(tmp_path: Path) -> None:
    _run(tmp_path, "plain", mix=False, qa=[0.0, 1.0], nll=[3.0, 3.0, 3.0])
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0, 1.0, 1.0], nll=[2.0, 2.0])
    effect = mixture_effect(mixed)
    assert [c.metric for c in effect.comparisons] == ["valid_json"]


@pytest.mark.parametrize(
    "change",
    [
        {"spec": {"learning_rate": 1e-3}},
        {"spec": {"model": "/elsewhere/OtherModel"}},
        {"manifest": {"inputs": [{"path": "/data/train.jsonl", "sha256": "bb"}]}},
        {"manifest": {"split": {"val_ratio": 0.1, "seed": 7}}},
        {"results": {"n_eval": 5}},
        {"results": {"general_file": "/other.jsonl"}},
    ],
    ids=["lr", "model", "data", "split", "n_eval", "general_file"],
)
def test_a_run_that_differs_in_more_than_the_mixture_is_no_counterpart(tmp_path, change) -> None:
    plain = _run(tmp_path, "plain", mix=False, qa=[1.0], nll=[3.0])
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0], nll=[2.0])
    files = {
        "spec": plain.spec,
        "manifest": plain.data / "manifest.json",
        "results": plain.eval / "results.json",
    }
    for what, values in change.items():
        _edit(files[what], **values)
    assert find_counterpart(mixed) is None and mixture_section(mixed) == []


def test_paths_and_the_model_folder_do_not_matter(tmp_path: Path) -> None:
    plain = _run(tmp_path, "plain", mix=False, qa=[1.0], nll=[3.0])
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0], nll=[2.0])
    _edit(plain.spec, model="/other/place/SmolLM2", eval_file="/x.jsonl")
    assert find_counterpart(mixed).root == plain.root


def test_the_newest_counterpart_wins_and_search_folders_are_honoured(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    old = _run(a, "old", mix=False, qa=[1.0], nll=[3.0])
    new = _run(b, "new", mix=False, qa=[1.0], nll=[3.0])
    mixed = _run(a, "mixed", mix=True, qa=[1.0], nll=[2.0])
    os.utime(old.eval / "results.json", (1_000_000, 1_000_000))
    assert find_counterpart(mixed).root == old.root  # only its own folder by default
    assert find_counterpart(mixed, [a, b, tmp_path / "missing"]).root == new.root
    assert find_counterpart(mixed, [b]).root == new.root
    assert find_counterpart(mixed, []) is None


def test_a_run_not_evaluated_or_with_broken_files_has_no_counterpart(tmp_path: Path) -> None:
    plain = _run(tmp_path, "plain", mix=False, qa=[1.0], nll=[3.0])
    mixed = _run(tmp_path, "mixed", mix=True, qa=[1.0], nll=[2.0])
    (plain.eval / "results.json").write_text("{broken")
    assert find_counterpart(mixed) is None
    (plain.eval / "results.json").write_text("[1, 2]")  # JSON, but not an object
    assert find_counterpart(mixed) is None
    (mixed.eval / "results.json").unlink()
    assert find_counterpart(mixed) is None and mixture_effect(mixed) is None


def test_two_runs_without_a_mixture_have_no_effect(tmp_path: Path) -> None:
    plain = _run(tmp_path, "plain", mix=False, qa=[1.0], nll=[3.0])
    other = _run(tmp_path, "other", mix=False, qa=[1.0], nll=[3.0])
    assert mixture_of(plain) is None
    assert mixture_effect(plain, other) is None


def test_the_report_section_is_a_markdown_table_with_its_explanation(tmp_path: Path) -> None:
    # the counterpart lives where no search would look: passed explicitly
    plain = _run(tmp_path / "elsewhere", "plain", mix=False, qa=[0.0, 1.0], nll=[3.0, 3.0])
    mixed = _run(tmp_path / "here", "mixed", mix=True, qa=[1.0, 1.0], nll=[2.0, 2.0])
    assert find_counterpart(mixed) is None and mixture_section(mixed) == []
    lines = mixture_section(mixed, plain)
    assert lines[:2] == ["### Effect of the general-data mixture", ""]
    assert lines[2] == (
        f"Tuned models compared item by item: without the mixture (run `{plain.id}`) and with "
        f"108 general rows (20% of training, run `{mixed.id}`). 'without' and 'with' columns "
        "are the tuned models' figures; the change is with minus without, with a paired "
        "bootstrap 95% interval."
    )
    assert lines[3:6] == [
        "",
        "| metric | n | without mixture | with mixture | change [95% CI], verdict |",
        "|---|---|---|---|---|",
    ]
    effect = mixture_effect(mixed, plain)
    assert lines[6:-1] == ["| " + " | ".join(r) + " |" for r in effect.rows()]
    assert len(lines[6:-1]) == len(effect.comparisons) == 3 and lines[-1] == ""
