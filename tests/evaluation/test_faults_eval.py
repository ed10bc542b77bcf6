"""Evaluation figures that a wrong constant or a wrong resampling would change (issue 19).

Each fixture is chosen so the faulty code gives a different answer: an interval at 95% that
holds zero while the 80% one does not, a constant shift whose paired interval has no width,
and perplexity rises on either side of the 10% forgetting bound but both under 50%.
"""

from __future__ import annotations

import math

import pytest

from tuitune.core.evaluation.scoring import EvalResults, compare, finalize, paired_bootstrap


def _gained_lost(gained: int, lost: int, n: int = 50) -> tuple[list[float], list[float]]:
    """``n`` prompts: ``gained`` right only after, ``lost`` right only before, 20 right on both."""
    before, after = [0.0] * n, [0.0] * n
    for i in range(gained):
        after[i] = 1.0
    for i in range(gained, gained + lost):
        before[i] = 1.0
    for i in range(20, 40):
        before[i] = after[i] = 1.0
    return before, after


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_the_reported_interval_is_95_percent_not_80(seed: int) -> None:
    # +8 / -3 of 50: delta 0.10 with a standard error of ~0.065 (z ~ 1.5), so a 95% interval
    # holds zero and an 80% one does not, whatever the seed.
    before, after = _gained_lost(8, 3)
    _, lo80, hi80 = paired_bootstrap(before, after, seed=seed, confidence=0.80)
    assert 0 < lo80 < hi80
    _, lo95, hi95 = paired_bootstrap(before, after, seed=seed, confidence=0.95)
    assert lo95 < 0 < hi95 and lo95 < lo80 and hi95 > hi80
    c = compare("exact_match", before, after, seed=seed)  # what the report shows
    assert c.delta == pytest.approx(0.10)
    assert c.ci_low < 0 < c.ci_high
    assert not c.significant and c.verdict == "not significant"


def test_finalize_states_95_percent_and_a_delta_within_noise_is_not_an_improvement() -> None:
    before, after = _gained_lost(8, 3)
    raw = {"task": "json_extract", "headline": "exact_match"}
    raw["task_scores"] = {"exact_match": {"before": before, "after": after}}
    out = finalize(raw, seed=0)
    assert out["confidence"] == 0.95
    (c,) = EvalResults.from_dict(out).comparisons
    assert c.before == pytest.approx(0.46) and c.after == pytest.approx(0.56)
    assert c.ci_low < 0 < c.ci_high and c.verdict == "not significant"


def test_a_constant_shift_has_a_paired_interval_of_exactly_the_shift() -> None:
    # Every example gains exactly 0.25: whichever examples a paired resample draws, the mean
    # difference is 0.25. Resampling before and after independently would widen it to about
    # +-0.15 around 0.25 (the scores themselves spread from 0 to 0.7).
    before = [(i * 7 % 50) / 70 for i in range(50)]
    after = [b + 0.25 for b in before]
    d, lo, hi = paired_bootstrap(before, after, seed=3)
    assert d == pytest.approx(0.25, abs=1e-12)
    assert lo == pytest.approx(0.25, abs=1e-12) and hi == pytest.approx(0.25, abs=1e-12)
    c = compare("score", before, after, seed=3)
    assert c.ci_high - c.ci_low == pytest.approx(0.0, abs=1e-12)
    assert c.significant and c.verdict == "improved"
    # ...and the same for a loss, weighted by tokens (the eval_loss path)
    tokens = [5 + i % 9 for i in range(50)]
    c = compare("eval_loss", after, before, seed=3, weights=tokens, higher_is_better=False)
    assert c.delta == pytest.approx(-0.25) and c.ci_low == pytest.approx(c.ci_high, abs=1e-12)
    assert c.verdict == "improved"


def test_a_paired_interval_is_narrower_than_an_unpaired_one_on_correlated_scores() -> None:
    before = [(i % 10) / 10 for i in range(40)]
    after = [min(1.0, b + (0.1 if i % 4 else 0.0)) for i, b in enumerate(before)]
    _, lo, hi = paired_bootstrap(before, after, seed=5)
    # the spread of the scores is ~0.29, so an unpaired 95% interval is at least ~0.25 wide
    assert 0 < hi - lo < 0.1


def _general(rise: float) -> dict:
    """General text whose token-weighted perplexity rises by exactly ``rise``."""
    nll = [2.0, 2.5, 3.0, 3.5]
    tokens = [10, 20, 30, 40]
    shift = math.log(1.0 + rise)
    return {
        "text_before": {"nll_sum": [m * t for m, t in zip(nll, tokens)], "tokens": tokens},
        "text_after": {"nll_sum": [(m + shift) * t for m, t in zip(nll, tokens)], "tokens": tokens},
        "qa_before": [1.0, 0.0, 1.0, 1.0],
        "qa_after": [1.0, 0.0, 1.0, 1.0],
    }


@pytest.mark.parametrize(("rise", "within"), [(0.22, False), (0.05, True)])
def test_forgetting_bound_is_a_10_percent_perplexity_rise(rise: float, within: bool) -> None:
    raw = {"task": "", "headline": "", "general": _general(rise)}
    res = EvalResults.from_dict(finalize(raw, seed=0))
    f = res.forgetting
    assert f["perplexity_rise"] == pytest.approx(rise)
    assert f["perplexity_within_bound"] is within
    assert f["answers_within_bound"] is True
    assert f["within_bound"] is within
    assert "10%" in f["bound"]
    flagged = any("forgetting" in w for w in res.warnings)
    assert flagged is (not within)
    (ppl,) = [c for c in res.comparisons if c.metric == "general_perplexity"]
    assert ppl.after / ppl.before == pytest.approx(1.0 + rise)


def test_a_significant_drop_in_general_answers_breaks_the_bound() -> None:
    general = _general(0.0)
    general["qa_before"] = [1.0] * 40
    general["qa_after"] = [1.0] * 10 + [0.0] * 30
    res = EvalResults.from_dict(finalize({"general": general}, seed=0))
    assert res.forgetting["perplexity_within_bound"] is True
    assert res.forgetting["answers_within_bound"] is False
    assert res.forgetting["within_bound"] is False


def test_weighted_figures_and_their_interval() -> None:
    before, after = [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]
    c = compare("score", before, after, seed=0, weights=[1.0, 3.0, 1.0, 5.0])
    assert c.before == pytest.approx(0.6) and c.after == pytest.approx(0.9)
    assert c.delta == pytest.approx(0.3) and c.n == 4
    assert c.ci_low <= c.delta <= c.ci_high


def test_a_perplexity_interval_is_transformed_onto_the_reported_scale() -> None:
    # every example's NLL rises by exactly 0.1: the NLL interval has no width, so the
    # perplexity interval is the perplexity change itself
    nll_b = [2.0, 2.5, 3.0, 1.5]
    nll_a = [x + 0.1 for x in nll_b]
    tokens = [10, 20, 30, 40]
    c = compare(
        "perplexity", nll_b, nll_a, seed=1, weights=tokens, higher_is_better=False,
        transform=math.exp,
    )  # fmt: skip
    mean_b = sum(x * t for x, t in zip(nll_b, tokens)) / 100
    assert c.before == pytest.approx(math.exp(mean_b))
    assert c.after == pytest.approx(math.exp(mean_b + 0.1))
    assert c.delta == pytest.approx(c.after - c.before)
    assert c.ci_low == pytest.approx(c.delta) and c.ci_high == pytest.approx(c.delta)
    assert c.significant and c.verdict == "worse"


def test_one_side_missing_keeps_the_count_and_has_no_interval() -> None:
    c = compare("exact_match", None, [1.0, 0.0, 1.0], seed=0)
    assert c.n == 3 and c.before is None and c.after == pytest.approx(2 / 3)
    assert c.delta is None and c.ci_low is None and c.ci_high is None and not c.significant
    assert compare("m", [], [], seed=0).n == 0


def test_paired_bootstrap_needs_two_equal_non_empty_lists() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([], [], seed=0)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0], seed=0)


def test_paired_bootstrap_percentiles_bracket_the_delta() -> None:
    before = [0.0] * 10 + [1.0] * 10
    after = [1.0] * 14 + [0.0] * 6
    d, lo, hi = paired_bootstrap(before, after, seed=4, samples=500)
    assert d == pytest.approx(0.2) and lo < d < hi
    d2, lo2, hi2 = paired_bootstrap(before, after, seed=4, samples=500, confidence=0.5)
    assert d2 == d and lo < lo2 < hi2 < hi


def test_a_worse_lower_is_better_metric_is_worse() -> None:
    c = compare("eval_loss", [1.0] * 30, [2.0] * 30, seed=0, higher_is_better=False)
    assert c.significant and c.verdict == "worse"
    c = compare("eval_loss", [1.0] * 30, [1.0] * 30, seed=0, higher_is_better=False)
    assert c.verdict == "no change"


def test_finalize_preference_and_loss_figures() -> None:
    raw = {
        "task": "",
        "headline": "eval_loss",
        "loss": {
            "before": {"nll_sum": [20.0, 60.0], "tokens": [10, 30]},
            "after": {"nll_sum": [10.0, 30.0], "tokens": [10, 30]},
        },
        "preference": {"margins": [0.5, -0.25, 1.0, 0.75]},
        "warnings": ["from the child"],
    }
    out = finalize(raw, seed=0)
    assert out["schema_version"] == 1 and out["bootstrap_samples"] == 2000
    assert "task_scores" not in out and out["per_example"] == {"task": {}}
    res = EvalResults.from_dict(out)
    by = {c.metric: c for c in res.comparisons}
    assert by["eval_loss"].before == pytest.approx(2.0) and by["eval_loss"].after == 1.0
    assert by["eval_loss"].group == "loss" and not by["eval_loss"].higher_is_better
    assert by["perplexity"].before == pytest.approx(math.exp(2.0))
    assert by["perplexity"].after == pytest.approx(math.exp(1.0))
    acc, margin = by["reward_accuracy"], by["reward_margin"]
    assert acc.before == 0.5 and acc.after == 0.75 and acc.group == "preference"
    assert margin.before == 0.0 and margin.after == pytest.approx(0.5)
    assert res.headline is by["eval_loss"]
    assert res.warnings == ["from the child"] and res.forgetting == {}


def test_finalize_warnings_come_in_order() -> None:
    raw = {
        "general": _general(0.30),
        "warnings": ["child warning"],
        "adapter_check": {"applied": False, "message": "identical to the base"},
    }
    res = EvalResults.from_dict(finalize(raw, seed=0))
    assert res.warnings[0] == "identical to the base"
    assert res.warnings[1] == "child warning"
    assert res.warnings[2].startswith("forgetting check outside its bound: general-text")
    assert len(res.warnings) == 3
    ok = EvalResults.from_dict(finalize({"adapter_check": {"applied": True}}, seed=0))
    assert ok.warnings == []


def test_an_unweighted_perplexity_uses_the_plain_mean() -> None:
    nll_b, nll_a = [2.0, 3.0, 4.0], [2.5, 3.5, 4.5]
    c = compare("perplexity", nll_b, nll_a, seed=0, higher_is_better=False, transform=math.exp)
    assert c.before == pytest.approx(math.exp(3.0)) and c.after == pytest.approx(math.exp(3.5))
    assert c.ci_low == pytest.approx(c.delta) and c.ci_high == pytest.approx(c.delta)


def test_finalize_is_reproducible_with_its_seed() -> None:
    before, after = _gained_lost(8, 3)
    raw = {"task_scores": {"exact_match": {"before": before, "after": after}}}
    runs = [EvalResults.from_dict(finalize(raw, seed=11)).comparisons[0] for _ in range(10)]
    assert all(r == runs[0] for r in runs)


def test_a_base_only_evaluation_still_reports_its_loss() -> None:
    raw = {"loss": {"before": {"nll_sum": [20.0, 30.0], "tokens": [10, 10]}}}
    by = {c.metric: c for c in EvalResults.from_dict(finalize(raw, seed=0)).comparisons}
    assert by["eval_loss"].before == pytest.approx(2.5) and by["eval_loss"].after is None
    assert by["perplexity"].before == pytest.approx(math.exp(2.5))
