"""Fine-tune, RAG or prompt engineering? The decision tree and flags from the seed guide.

The questions are asked in the guide's order and the first "yes" decides:

1. Can a good prompt solve this?                          -> prompt engineering
2. Does the task require up-to-date or private documents? -> RAG
3. Do you need consistent style/format/behaviour at scale? -> fine-tuning
4. Is data privacy critical (can't send data to an API)?  -> fine-tuning
5. Is inference cost at scale a major concern?             -> fine-tuning (a smaller model)
6. otherwise                                               -> try prompting or RAG first

Green and red flags are counted separately and shown next to the verdict; they never flip
the tree's answer, but red flags on a fine-tuning verdict are named as reasons to wait.
The user may go on against the verdict; the wizard records that (``proceed_against``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    yes_means: str  # the approach a "yes" leads to, or "" to go on
    why: str  # the reason named in the verdict when this "yes" decided


@dataclass(frozen=True)
class Flag:
    key: str
    text: str


QUESTIONS: tuple[Question, ...] = (
    Question(
        "prompt_solves",
        "Can a good prompt solve this?",
        "prompt",
        "a good prompt already solves it: prompt engineering is cheapest",
    ),
    Question(
        "needs_documents",
        "Does the task require up-to-date or private documents?",
        "rag",
        "the task needs up-to-date or private documents: retrieval (RAG) supplies them",
    ),
    Question(
        "needs_consistency",
        "Do you need consistent style, format or behaviour at scale?",
        "finetune",
        "consistent style, format or behaviour at scale is what fine-tuning buys",
    ),
    Question(
        "privacy_critical",
        "Is data privacy critical (data cannot be sent to an API)?",
        "finetune",
        "data privacy is critical: a fine-tuned model runs where the data lives",
    ),
    Question(
        "inference_cost",
        "Is inference cost at scale a major concern?",
        "finetune_small",
        "inference cost at scale matters: a smaller fine-tuned model beats a large prompted one",
    ),
)

GREEN_FLAGS: tuple[Flag, ...] = (
    Flag("examples_500", "You have 500+ high-quality labeled examples"),
    Flag("strict_format", "You need a very specific output format every time"),
    Flag("inconsistent_prompting", "Prompt engineering gives inconsistent results"),
    Flag("private_data", "You need to run the model on private/sensitive data"),
    Flag("reduce_cost", "You need to reduce inference costs"),
    Flag("persona", "You need a specific persona or communication style consistently"),
)

RED_FLAGS: tuple[Flag, ...] = (
    Flag("examples_lt_100", "You have fewer than 100 examples"),
    Flag("no_few_shot", "You haven't tried few-shot prompting first"),
    Flag("realtime_knowledge", "The task requires real-time knowledge (use RAG)"),
    Flag("changes_often", "You need to update behaviour frequently (retraining is expensive)"),
    Flag("base_good", "The base model already does the task well with prompting"),
)

APPROACHES = {
    "prompt": "Use prompt engineering",
    "rag": "Use RAG (retrieval-augmented generation)",
    "finetune": "Fine-tune",
    "finetune_small": "Fine-tune a smaller model",
    "try_first": "Try prompt engineering or RAG first",
}


@dataclass(frozen=True)
class Verdict:
    """The tree's answer with the reasons behind it and the counted flags."""

    approach: str  # a key of APPROACHES
    reasons: list[str] = field(default_factory=list)
    green: list[str] = field(default_factory=list)  # texts of the green flags raised
    red: list[str] = field(default_factory=list)
    decided_by: str = ""  # the question key whose "yes" decided; "" when none did

    @property
    def title(self) -> str:
        return APPROACHES[self.approach]

    @property
    def fine_tune(self) -> bool:
        return self.approach in ("finetune", "finetune_small")

    @property
    def caution(self) -> bool:
        """A fine-tuning verdict with more red than green flags: the guide says wait."""
        return self.fine_tune and len(self.red) > len(self.green)


def decide(answers: Mapping[str, bool], flags: Mapping[str, bool] | None = None) -> Verdict:
    """Walk the tree in the guide's order; count the flags; name the reasons."""
    flags = flags or {}
    green = [f.text for f in GREEN_FLAGS if flags.get(f.key)]
    red = [f.text for f in RED_FLAGS if flags.get(f.key)]
    approach, decided_by, reasons = "try_first", "", []
    for q in QUESTIONS:
        if answers.get(q.key):
            approach, decided_by = q.yes_means, q.key
            reasons.append(q.why)
            break
    if not decided_by:
        reasons.append(
            "no question pointed to fine-tuning, RAG or a prompt alone: start with prompting "
            "or RAG, they cost far less"
        )
    if approach in ("finetune", "finetune_small"):
        if red:
            reasons.append(
                f"{len(red)} red flag(s) say don't fine-tune yet: " + "; ".join(red).lower()
            )
        if green:
            reasons.append(f"{len(green)} green flag(s) support it")
    elif green and len(green) >= 3:
        reasons.append(
            f"{len(green)} green flags point to fine-tuning: revisit if this falls short"
        )
    return Verdict(approach, reasons, green, red, decided_by)


def example_count_flags(n_examples: int) -> dict[str, bool]:
    """The data-derived flags: fewer than 100 examples (red), 500 or more (green)."""
    return {"examples_lt_100": n_examples < 100, "examples_500": n_examples >= 500}


def record(
    answers: Mapping[str, bool], flags: Mapping[str, bool], *, proceed: bool
) -> dict[str, Any]:
    """What the session stores for the Decide step, including going on against the verdict."""
    v = decide(answers, flags)
    return {
        "answers": {q.key: bool(answers.get(q.key)) for q in QUESTIONS},
        "flags": {f.key: bool(flags.get(f.key)) for f in (*GREEN_FLAGS, *RED_FLAGS)},
        "verdict": v.approach,
        "reasons": v.reasons,
        "green_count": len(v.green),
        "red_count": len(v.red),
        "proceed_against": bool(proceed and not v.fine_tune),
    }


# Other spellings of the question keys (hand-written session files use them).
ALIASES = {
    "prompt_solves_it": "prompt_solves",
    "needs_fresh_or_private_documents": "needs_documents",
    "needs_up_to_date_or_private_documents": "needs_documents",
    "needs_consistent_format_at_scale": "needs_consistency",
    "needs_consistent_style_at_scale": "needs_consistency",
    "data_privacy_critical": "privacy_critical",
    "inference_cost_matters": "inference_cost",
}


def saved_answers(saved: Mapping[str, Any]) -> tuple[dict[str, bool], dict[str, bool]]:
    """(answers, flags) from what a session stores for the Decide step: the ``record`` form,
    or flat question keys (aliases accepted)."""
    if "answers" in saved or "flags" in saved:
        return dict(saved.get("answers") or {}), dict(saved.get("flags") or {})
    keys = {q.key for q in QUESTIONS}
    flag_keys = {f.key for f in (*GREEN_FLAGS, *RED_FLAGS)}
    answers = {ALIASES.get(k, k): bool(v) for k, v in saved.items() if ALIASES.get(k, k) in keys}
    flags = {k: bool(v) for k, v in saved.items() if k in flag_keys}
    return answers, flags


# What a new user on the quickstart (JSON extraction) would answer: a strict output format.
QUICKSTART_ANSWERS = {"needs_consistency": True}
QUICKSTART_FLAGS = {"strict_format": True, "inconsistent_prompting": True}
