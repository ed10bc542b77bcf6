"""Data set statistics and the green/red flags the seed advice gives.

Counts, turns per conversation, a token-length histogram (with the model's tokenizer and
chat template when one is given) and flags: fewer than 100 examples is red, 100-499 amber,
500 or more green.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tuitune.core.data.rows import Item, StepReport, row_text
from tuitune.core.data.templates import ensure_chat_template, render
from tuitune.core.data.training_view import template_error, tokenize_segments

RED_BELOW = 100
GREEN_FROM = 500
_BATCH = 1000


@dataclass(frozen=True)
class Flag:
    """A verdict to show in colour: level is "red", "amber" or "green"."""

    level: str
    message: str


@dataclass
class DataStats:
    """Numbers about a curated data set, ready to show.

    ``token_histogram`` is a list of ``(bin_start, bin_end, count)``; token figures are empty
    when no tokenizer was given. ``turns`` maps turns per conversation to row counts.
    """

    examples: int = 0
    eval_examples: int = 0
    data_format: str = ""
    turns: dict[int, int] = field(default_factory=dict)
    token_min: int = 0
    token_median: int = 0
    token_p95: int = 0
    token_max: int = 0
    token_histogram: list[tuple[int, int, int]] = field(default_factory=list)
    over_max_length: int = 0
    duplicates_removed: int = 0
    flags: list[Flag] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_flag(n: int) -> Flag:
    if n < RED_BELOW:
        return Flag("red", f"{n} examples: fewer than {RED_BELOW} rarely teaches a task reliably")
    if n < GREEN_FROM:
        return Flag("amber", f"{n} examples: usable; {GREEN_FROM}+ is where results get steady")
    return Flag("green", f"{n} examples: {GREEN_FROM}+ is a healthy amount for a narrow task")


def token_lengths(rows: Sequence[dict[str, Any]], tokenizer: Any) -> list[int]:
    """Tokens per row as the model sees them (chat template applied), batched for speed."""
    if rows and "segments" in rows[0]:  # input_output: tokenized per segment, as trained
        return [len(tokenize_segments(r["segments"], tokenizer)["input_ids"]) for r in rows]
    ensure_chat_template(tokenizer)
    lengths: list[int] = []
    for start in range(0, len(rows), _BATCH):
        try:
            texts = [render(tokenizer, r) for r in rows[start : start + _BATCH]]
        except Exception as e:  # jinja's TemplateError, raise_exception() in the template
            raise template_error(e) from None
        enc = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        lengths.extend(len(ids) for ids in enc)
    return lengths


def histogram(values: Sequence[int], bins: int = 12) -> list[tuple[int, int, int]]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(1, -(-(hi - lo + 1) // bins))
    counts = Counter((v - lo) // width for v in values)
    return [
        (lo + i * width, lo + (i + 1) * width - 1, counts.get(i, 0))
        for i in range(bins)
        if lo + i * width <= hi
    ]


def _turns(row: dict[str, Any]) -> int:
    if "messages" in row:
        return sum(1 for m in row["messages"] if m["role"] != "system")
    if isinstance(row.get("prompt"), list):
        return len(row["prompt"]) + len(row.get("completion") or [])
    return 2 if "prompt" in row else 1


def compute_stats(
    rows: Sequence[dict[str, Any]],
    data_format: str,
    *,
    tokenizer: Any = None,
    max_length: int | None = None,
    eval_rows: int = 0,
    duplicates_removed: int = 0,
    lengths: Sequence[int] | None = None,
) -> DataStats:
    """Statistics of curated rows; pass ``lengths`` when already computed (saves a pass)."""
    st = DataStats(
        examples=len(rows),
        eval_examples=eval_rows,
        data_format=data_format,
        duplicates_removed=duplicates_removed,
    )
    st.turns = dict(sorted(Counter(_turns(r) for r in rows).items()))
    if lengths is None and tokenizer is not None and rows:
        lengths = token_lengths(rows, tokenizer)
    if lengths:
        ordered = sorted(lengths)
        st.token_min, st.token_max = ordered[0], ordered[-1]
        st.token_median = int(statistics.median(ordered))
        st.token_p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        st.token_histogram = histogram(ordered)
        if max_length:
            st.over_max_length = sum(1 for v in ordered if v > max_length)
    st.flags.append(count_flag(len(rows)))
    if st.over_max_length:
        st.flags.append(
            Flag(
                "amber",
                f"{st.over_max_length} examples exceed max_length {max_length} tokens "
                "and would be truncated",
            )
        )
    if duplicates_removed:
        st.flags.append(Flag("amber", f"{duplicates_removed} duplicates were removed"))
    return st


def token_length_step(
    items: list[Item], fmt: str, step: StepReport, tokenizer: Any, max_length: int
) -> list[Item]:
    """Drop rows longer than ``max_length`` tokens: truncation would cut off the answer."""

    lengths = token_lengths([it.row for it in items], tokenizer)
    kept = []
    for item, n in zip(items, lengths, strict=True):
        item.tokens = n
        if n > max_length:
            step.dropped += 1
            step.example(item.origin, row_text(item.row), reason=f"{n} tokens > {max_length}")
            continue
        kept.append(item)
    step.details["max_length"] = max_length
    step.details["longest"] = max(lengths) if lengths else 0
    return kept
