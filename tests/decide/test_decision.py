"""The decision tree follows the seed guide's order; flags are counted and named."""

from __future__ import annotations

import pytest

from tuitune.core.decide import decision
from tuitune.core.decide.decision import QUESTIONS, decide, example_count_flags, record


def test_questions_are_in_the_guides_order() -> None:
    assert [q.key for q in QUESTIONS] == [
        "prompt_solves",
        "needs_documents",
        "needs_consistency",
        "privacy_critical",
        "inference_cost",
    ]


@pytest.mark.parametrize(
    ("yes", "approach"),
    [
        ("prompt_solves", "prompt"),
        ("needs_documents", "rag"),
        ("needs_consistency", "finetune"),
        ("privacy_critical", "finetune"),
        ("inference_cost", "finetune_small"),
    ],
)
def test_each_yes_leads_where_the_tree_says(yes: str, approach: str) -> None:
    v = decide({yes: True})
    assert v.approach == approach
    assert v.decided_by == yes
    assert v.reasons


def test_first_yes_wins() -> None:
    # A good prompt beats everything after it, even if fine-tuning questions say yes.
    v = decide({"prompt_solves": True, "needs_consistency": True, "inference_cost": True})
    assert v.approach == "prompt"
    v = decide({"needs_documents": True, "privacy_critical": True})
    assert v.approach == "rag"


def test_all_no_means_try_prompting_or_rag_first() -> None:
    v = decide({})
    assert v.approach == "try_first"
    assert not v.fine_tune
    assert "prompting or RAG" in v.reasons[0]


def test_red_flags_turn_a_fine_tune_verdict_into_not_yet_with_each_reason() -> None:
    v = decide(
        {"needs_consistency": True},
        {"examples_lt_100": True, "no_few_shot": True, "strict_format": True},
    )
    assert len(v.red) == 2 and len(v.green) == 1
    assert v.approach == "not_yet" and v.tree == "finetune" and v.caution
    assert not v.fine_tune  # Next asks twice, and going on is recorded
    text = "\n".join(v.reasons)
    assert "2 red flag(s)" in text
    assert "fewer than 100 examples" in text and "try few-shot first" in text


def test_real_time_knowledge_points_to_rag() -> None:
    v = decide({"needs_consistency": True}, {"realtime_knowledge": True})
    assert v.approach == "not_yet" and v.points_to == "rag"
    assert any("use RAG" in r for r in v.reasons)


def test_red_flags_do_not_change_a_verdict_that_is_not_fine_tuning() -> None:
    v = decide({"prompt_solves": True}, {"no_few_shot": True})
    assert v.approach == "prompt" and v.tree == ""


def test_a_smaller_model_verdict_is_remembered_under_not_yet() -> None:
    assert decide({"inference_cost": True}).smaller_model
    v = decide({"inference_cost": True}, {"changes_often": True})
    assert v.approach == "not_yet" and v.smaller_model


def test_contradictory_answers_are_named() -> None:
    v = decide({"prompt_solves": True}, {"inconsistent_prompting": True})
    assert any("inconsistent results" in c for c in v.contradictions)
    v = decide({"needs_consistency": True}, {"examples_500": True, "examples_lt_100": True})
    assert any("500+" in c for c in v.contradictions)
    assert decide(decision.QUICKSTART_ANSWERS, decision.QUICKSTART_FLAGS).contradictions == []


def test_the_measured_count_revisits_the_verdict() -> None:
    saved = record(decision.QUICKSTART_ANSWERS, decision.QUICKSTART_FLAGS, proceed=True)
    rec, change = decision.revisit(saved, 40)
    assert rec["verdict"] == "not_yet" and rec["flags"]["examples_lt_100"] is True
    assert rec["measured_examples"] == 40 and "40 examples measured" in change
    rec, change = decision.revisit(saved, 480)
    assert rec["verdict"] == "finetune" and change == ""
    rec, _ = decision.revisit(saved, 600)
    assert rec["flags"]["examples_500"] is True and rec["green_count"] == 3


def test_example_count_flags() -> None:
    assert example_count_flags(50) == {"examples_lt_100": True, "examples_500": False}
    assert example_count_flags(500) == {"examples_lt_100": False, "examples_500": True}
    assert example_count_flags(300) == {"examples_lt_100": False, "examples_500": False}


def test_record_notes_going_on_against_the_verdict() -> None:
    rec = record({"prompt_solves": True}, {}, proceed=True)
    assert rec["verdict"] == "prompt" and rec["proceed_against"] is True
    rec = record({"needs_consistency": True}, {"persona": True}, proceed=True)
    assert rec["proceed_against"] is False and rec["green_count"] == 1


def test_quickstart_defaults_lead_to_fine_tuning() -> None:
    assert decide(decision.QUICKSTART_ANSWERS, decision.QUICKSTART_FLAGS).fine_tune


def test_saved_answers_reads_records_and_flat_aliases() -> None:
    rec = record({"privacy_critical": True}, {"persona": True}, proceed=False)
    assert decision.saved_answers(rec) == (rec["answers"], rec["flags"])
    answers, flags = decision.saved_answers(
        {"prompt_solves_it": False, "needs_consistent_format_at_scale": True, "note": "x"}
    )
    assert answers == {"prompt_solves": False, "needs_consistency": True} and flags == {}
    assert decide(answers).approach == "finetune"
