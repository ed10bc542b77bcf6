"""Honesty of before/after figures: paired bootstrap intervals and verdicts."""

from __future__ import annotations

import math

from tuitune.core.evaluation.scoring import EvalResults, compare, finalize, paired_bootstrap


def test_a_change_within_noise_is_not_reported_as_an_improvement() -> None:
    # 50 prompts: 20 right before, 22 right after, with churn in both directions.
    before = [1.0] * 20 + [0.0] * 30
    after = [1.0] * 17 + [0.0] * 3 + [1.0] * 5 + [0.0] * 25
    assert sum(after) - sum(before) == 2
    c = compare("exact_match", before, after, seed=1)
    assert c.n == 50 and c.delta == 0.04
    assert c.ci_low < 0 < c.ci_high
    assert not c.significant
    assert c.verdict == "not significant"


def test_a_clear_change_is_significant_and_signed_by_direction() -> None:
    before = [0.0] * 45 + [1.0] * 5
    after = [1.0] * 40 + [0.0] * 10
    up = compare("exact_match", before, after, seed=1)
    assert up.significant and up.verdict == "improved" and up.ci_low > 0
    down = compare("exact_match", after, before, seed=1)
    assert down.significant and down.verdict == "worse"
    loss_down = compare("eval_loss", [2.0] * 30, [1.0] * 30, seed=1, higher_is_better=False)
    assert loss_down.verdict == "improved"


def test_identical_sides_are_no_change() -> None:
    c = compare("exact_match", [1.0, 0.0, 1.0], [1.0, 0.0, 1.0], seed=3)
    assert c.delta == 0 and not c.significant and c.verdict == "no change"


def test_bootstrap_is_seeded_and_weighted() -> None:
    b, a = [0.1, 0.5, 0.3, 0.9], [0.2, 0.4, 0.8, 0.7]
    assert paired_bootstrap(b, a, seed=7) == paired_bootstrap(b, a, seed=7)
    d, _, _ = paired_bootstrap([1.0, 0.0], [0.0, 0.0], seed=0, weights=[3.0, 1.0])
    assert d == -0.75


def test_one_side_only_has_no_delta() -> None:
    c = compare("exact_match", [1.0, 0.0], None, seed=0)
    assert c.before == 0.5 and c.after is None and c.delta is None and c.verdict == ""


def test_finalize_builds_comparisons_forgetting_and_warnings() -> None:
    raw = {
        "task": "json_extract",
        "headline": "exact_match",
        "task_scores": {"exact_match": {"before": [0.0] * 40, "after": [1.0] * 36 + [0.0] * 4}},
        "loss": {
            "before": {"nll_sum": [20.0] * 40, "tokens": [10] * 40},
            "after": {"nll_sum": [5.0] * 40, "tokens": [10] * 40},
        },
        "general": {
            "text_before": {"nll_sum": [30.0, 34.0], "tokens": [10, 10]},
            "text_after": {"nll_sum": [40.0, 46.0], "tokens": [10, 10]},
            "qa_before": [1.0, 1.0, 0.0],
            "qa_after": [1.0, 1.0, 0.0],
        },
        "adapter_check": {"applied": True},
    }
    res = EvalResults.from_dict(finalize(raw, seed=0))
    by = {c.metric: c for c in res.comparisons}
    assert by["exact_match"].verdict == "improved" and by["exact_match"].n == 40
    assert math.isclose(by["eval_loss"].before, 2.0) and math.isclose(by["eval_loss"].after, 0.5)
    assert math.isclose(by["perplexity"].before, math.exp(2.0))
    assert by["perplexity"].verdict == "improved"
    # general perplexity exp(3.2) -> exp(4.3): far outside the 10% bound
    assert res.forgetting["within_bound"] is False
    assert any("forgetting" in w for w in res.warnings)
    assert res.headline is by["exact_match"]


def test_finalize_flags_an_adapter_that_changed_nothing() -> None:
    raw = {
        "task": "json_extract",
        "headline": "exact_match",
        "task_scores": {"exact_match": {"before": [0.0, 1.0], "after": [0.0, 1.0]}},
        "adapter_check": {"applied": False, "message": "the tuned model is identical to the base"},
    }
    res = EvalResults.from_dict(finalize(raw, seed=0))
    assert res.warnings[0].startswith("the tuned model is identical")
