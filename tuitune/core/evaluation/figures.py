"""How an evaluation figure reads: metric labels, values (rates as percentages), changes
with their interval and verdict. Shared by the report, the forgetting section and the TUI."""

from __future__ import annotations

import math

from tuitune.core.evaluation.scoring import Comparison

_RATE_GROUPS = ("task", "forgetting", "preference")
_LABELS = {
    "exact_match": "exact match",
    "json_valid": "valid JSON (whole reply)",
    "schema_ok": "schema (keys, order, types)",
    "field_accuracy": "field accuracy",
    "eval_loss": "eval loss (answer tokens)",
    "perplexity": "eval perplexity",
    "general_perplexity": "general-text perplexity",
    "general_answers": "general questions answered",
    "reward_accuracy": "DPO reward accuracy",
    "reward_margin": "DPO reward margin",
}


def label(metric: str) -> str:
    return _LABELS.get(metric, metric.replace("_", " "))


def _is_rate(c: Comparison) -> bool:
    return (
        c.group in _RATE_GROUPS
        and c.metric != "reward_margin"
        and not c.metric.endswith(("perplexity", "loss"))
    )


def fmt_value(c: Comparison, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if _is_rate(c):
        return f"{100 * value:.1f}%"
    if c.metric.endswith("perplexity"):
        return f"{value:.2f}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def fmt_delta(c: Comparison, value: float | None) -> str:
    if value is None:
        return "-"
    if _is_rate(c):
        return f"{100 * value:+.1f} pts"
    return f"{value:+.2f}" if c.metric.endswith("perplexity") else f"{value:+.4f}"


def fmt_change(c: Comparison, *, interval: bool = False) -> str:
    """'+85.0 pts, improved' (with the interval: '+85.0 [+75.0, +93.3] pts, improved')."""
    if c.delta is None:
        return "-"
    text = fmt_delta(c, c.delta)
    if interval and c.ci_low is not None:
        unit = " pts" if text.endswith(" pts") else ""
        strip = (lambda s: s[: -len(unit)]) if unit else (lambda s: s)
        text = (
            f"{strip(text)} [{strip(fmt_delta(c, c.ci_low))}, {strip(fmt_delta(c, c.ci_high))}]"
            f"{unit}"
        )
    return f"{text}, {c.verdict}"


def comparison_rows(
    comparisons: list[Comparison], *, interval: bool = False
) -> list[tuple[str, ...]]:
    """(metric, n, before, after, change) for each comparison, the change with its 95%
    interval when ``interval``: the rows of report.md, the forgetting section and the TUI."""
    return [
        (
            label(c.metric),
            str(c.n),
            fmt_value(c, c.before),
            fmt_value(c, c.after),
            fmt_change(c, interval=interval),
        )
        for c in comparisons
    ]
