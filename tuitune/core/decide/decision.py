"""Fine-tune, RAG or prompt engineering? The decision tree and flags from the seed guide.

The questions are asked in the guide's order and the first "yes" decides:

1. Can a good prompt solve this?                          -> prompt engineering
2. Does the task require up-to-date or private documents? -> RAG
3. Do you need consistent style/format/behaviour at scale? -> fine-tuning
4. Is data privacy critical (can't send data to an API)?  -> fine-tuning
5. Is inference cost at scale a major concern?             -> fine-tuning (a smaller model)
6. otherwise                                               -> try prompting or RAG first

The guide calls its red flags "Don't fine-tune yet": one raised on a fine-tuning verdict turns
it into "not yet", each with its own reason and what to do instead ("needs real-time
knowledge" points to RAG). Answers that contradict each other are named. The example count
measured on the Data step replaces the user's guess for the two count flags. The user may go
on against any verdict; the wizard records that (``proceed_against``).
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
    why: str = ""  # for a red flag: why it says "not yet", and what to do instead


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
    Flag(
        "examples_lt_100",
        "You have fewer than 100 examples",
        "fewer than 100 examples: too few to teach a behaviour reliably; collect more "
        "(the guide starts at 500-2000) or use them as few-shot examples",
    ),
    Flag(
        "no_few_shot",
        "You haven't tried few-shot prompting first",
        "few-shot prompting is untried: try few-shot first, it costs minutes, not a training run",
    ),
    Flag(
        "realtime_knowledge",
        "The task requires real-time knowledge (use RAG)",
        "the task needs real-time knowledge: weights freeze what they learn, so use RAG",
    ),
    Flag(
        "changes_often",
        "You need to update behaviour frequently (retraining is expensive)",
        "the behaviour changes often: every change means retraining; a prompt or RAG "
        "changes in minutes",
    ),
    Flag(
        "base_good",
        "The base model already does the task well with prompting",
        "the base model already does it with prompting: a fine-tune adds cost, not quality",
    ),
)

APPROACHES = {
    "prompt": "Use prompt engineering",
    "rag": "Use RAG (retrieval-augmented generation)",
    "finetune": "Fine-tune",
    "finetune_small": "Fine-tune a smaller model",
    "try_first": "Try prompt engineering or RAG first",
    "not_yet": "Not yet: deal with the red flags first",
}

# Pairs of answers that cannot both be true: (key, value, key, value, why they clash).
# Keys are question or flag keys; the text is shown so the user fixes one of the two.
CONTRADICTIONS: tuple[tuple[str, bool, str, bool, str], ...] = (
    (
        "prompt_solves",
        True,
        "inconsistent_prompting",
        True,
        "'a good prompt solves this' and 'prompting gives inconsistent results'",
    ),
    (
        "prompt_solves",
        False,
        "base_good",
        True,
        "'a prompt cannot solve this' and 'the base model already does it with prompting'",
    ),
    (
        "base_good",
        True,
        "inconsistent_prompting",
        True,
        "'the base model does it well with prompting' and 'prompting gives inconsistent results'",
    ),
    (
        "examples_500",
        True,
        "examples_lt_100",
        True,
        "'500+ examples' and 'fewer than 100 examples'",
    ),
    (
        "needs_documents",
        False,
        "realtime_knowledge",
        True,
        "'no up-to-date documents needed' and 'the task requires real-time knowledge'",
    ),
    (
        "privacy_critical",
        False,
        "private_data",
        True,
        "'privacy is not critical' and 'the model must run on private data'",
    ),
    (
        "inference_cost",
        False,
        "reduce_cost",
        True,
        "'inference cost is not a concern' and 'you need to reduce inference costs'",
    ),
)
# Red flags whose own advice names an approach: the "not yet" verdict points there.
RED_POINTS_TO = {"realtime_knowledge": "rag", "base_good": "prompt", "no_few_shot": "prompt"}


@dataclass(frozen=True)
class Verdict:
    """The tree's answer with the reasons behind it and the counted flags."""

    approach: str  # a key of APPROACHES
    reasons: list[str] = field(default_factory=list)
    green: list[str] = field(default_factory=list)  # texts of the green flags raised
    red: list[str] = field(default_factory=list)
    decided_by: str = ""  # the question key whose "yes" decided; "" when none did
    tree: str = ""  # what the tree alone said, before the red flags ("" = same as approach)
    contradictions: list[str] = field(default_factory=list)
    points_to: str = ""  # for "not yet": the approach the red flags name (rag, prompt), if any

    @property
    def title(self) -> str:
        return APPROACHES[self.approach]

    @property
    def fine_tune(self) -> bool:
        return self.approach in ("finetune", "finetune_small")

    @property
    def caution(self) -> bool:
        """The tree said fine-tune but red flags hold it back (the guide's "don't yet")."""
        return self.approach == "not_yet"

    @property
    def smaller_model(self) -> bool:
        """The verdict (or the tree under a "not yet") is "fine-tune a smaller model"."""
        return "finetune_small" in (self.approach, self.tree)


def decide(answers: Mapping[str, bool], flags: Mapping[str, bool] | None = None) -> Verdict:
    """Walk the tree in the guide's order; red flags hold a fine-tuning verdict back."""
    flags = flags or {}
    green = [f.text for f in GREEN_FLAGS if flags.get(f.key)]
    raised = [f for f in RED_FLAGS if flags.get(f.key)]
    red = [f.text for f in raised]
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
    tree, points_to = approach, ""
    if approach in ("finetune", "finetune_small"):
        if raised:
            approach = "not_yet"
            reasons.append(
                f"the tree says {APPROACHES[tree].lower()}, but the guide says don't fine-tune "
                f"yet while {len(raised)} red flag(s) stand:"
            )
            reasons += [f.why for f in raised]
            named = [RED_POINTS_TO[f.key] for f in raised if f.key in RED_POINTS_TO]
            points_to = named[0] if named else ""
        if green:
            reasons.append(f"{len(green)} green flag(s) support fine-tuning")
    elif green and len(green) >= 3:
        reasons.append(
            f"{len(green)} green flags point to fine-tuning: revisit if this falls short"
        )
    return Verdict(
        approach,
        reasons,
        green,
        red,
        decided_by,
        tree if tree != approach else "",
        contradictions(answers, flags),
        points_to,
    )


def contradictions(answers: Mapping[str, bool], flags: Mapping[str, bool]) -> list[str]:
    """Answers that cannot both be true, named so the user fixes one of them."""
    given = {**{k: bool(v) for k, v in answers.items()}, **{k: bool(v) for k, v in flags.items()}}
    out = []
    for a, va, b, vb, why in CONTRADICTIONS:
        if given.get(a, False) == va and given.get(b, False) == vb:
            out.append(f"{why} cannot both hold: change one")
    return out


COUNT_FLAGS = ("examples_lt_100", "examples_500")


def example_count_flags(n_examples: int) -> dict[str, bool]:
    """The data-derived flags: fewer than 100 examples (red), 500 or more (green)."""
    return {"examples_lt_100": n_examples < 100, "examples_500": n_examples >= 500}


def with_measured(flags: Mapping[str, bool], n_examples: int | None) -> dict[str, bool]:
    """The flags with the two count flags set from the measured example count, when known."""
    out = dict(flags)
    if n_examples is not None:
        out.update(example_count_flags(n_examples))
    return out


def record(
    answers: Mapping[str, bool],
    flags: Mapping[str, bool],
    *,
    proceed: bool,
    measured_examples: int | None = None,
) -> dict[str, Any]:
    """What the session stores for the Decide step, including going on against the verdict."""
    flags = with_measured(flags, measured_examples)
    v = decide(answers, flags)
    out = {
        "answers": {q.key: bool(answers.get(q.key)) for q in QUESTIONS},
        "flags": {f.key: bool(flags.get(f.key)) for f in (*GREEN_FLAGS, *RED_FLAGS)},
        "verdict": v.approach,
        "reasons": v.reasons,
        "green_count": len(v.green),
        "red_count": len(v.red),
        "proceed_against": bool(proceed and not v.fine_tune),
    }
    if v.tree:
        out["tree_verdict"] = v.tree
    if v.contradictions:
        out["contradictions"] = v.contradictions
    if measured_examples is not None:
        out["measured_examples"] = int(measured_examples)
    return out


def revisit(saved: Mapping[str, Any], n_examples: int) -> tuple[dict[str, Any], str]:
    """The Decide record again with the measured example count: (new record, what changed).

    Keeps ``proceed_against`` and the note; the change text is "" when the verdict stands.
    """
    answers, flags = saved_answers(saved)
    before = str(saved.get("verdict") or decide(answers, flags).approach)
    proceeded = bool(saved.get("proceed_against"))
    rec = record(answers, flags, proceed=proceeded, measured_examples=n_examples)
    if "note" in saved:
        rec["note"] = saved["note"]
    change = ""
    if rec["verdict"] != before:
        change = (
            f"{n_examples} examples measured: the Decide verdict is now "
            f"{APPROACHES[rec['verdict']]!r} (was {APPROACHES.get(before, before)!r})"
        )
    return rec, change


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
