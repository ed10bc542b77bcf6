"""Near-duplicates: two ~30-word rows one word apart are caught at the default 0.85
threshold and kept at 0.95 (issue 19: the old fixture's pair had Jaccard 1.0)."""

from __future__ import annotations

import pytest

from tuitune.core.data.curation import DEFAULTS, Item, curate
from tuitune.core.data.dedup import shingles

# 30 words; the second row changes only the first word. Word 5-gram shingles: 26 per row,
# 25 shared, so Jaccard = 25 / 27 = 0.926 (MinHash with 64 permutations estimates 0.92):
# a near-duplicate at 0.85, not at 0.95.
FIRST = (
    "Last spring the committee reviewed every application submitted before the deadline and "
    "selected twelve candidates whose research proposals showed clear methods, careful budgets "
    "and realistic timelines for the coming year."
)
SECOND = "Early" + FIRST[len("Last") :]
OTHER = "A short note about the weather in Paris: sunny in the morning, rain after lunch."


def _items() -> list[Item]:
    return [
        Item("f.jsonl:1", {"text": FIRST}),
        Item("f.jsonl:2", {"text": SECOND}),
        Item("f.jsonl:3", {"text": OTHER}),
    ]


def test_the_fixture_sits_between_the_thresholds() -> None:
    assert len(FIRST.split()) == 30 and len(SECOND.split()) == 30
    a, b = shingles(FIRST), shingles(SECOND)
    jaccard = len(a & b) / len(a | b)
    assert jaccard == pytest.approx(25 / 27)
    assert 0.85 < jaccard < 0.95


def test_default_threshold_drops_the_near_duplicate() -> None:
    assert DEFAULTS["near_threshold"] == 0.85
    items, report = curate(_items(), "text", {"dedup_exact": False})
    assert [i.origin for i in items] == ["f.jsonl:1", "f.jsonl:3"]
    near = report.step("dedup_near")
    assert near.dropped == 1 and near.details["threshold"] == 0.85
    assert "near-duplicate of f.jsonl:1" in near.examples[0]["reason"]


def test_a_stricter_threshold_keeps_both_rows() -> None:
    items, report = curate(_items(), "text", {"dedup_exact": False, "near_threshold": 0.95})
    assert len(items) == 3 and report.step("dedup_near").dropped == 0


def test_exact_duplicates_are_not_left_to_the_near_step() -> None:
    rows = [*_items(), Item("f.jsonl:4", {"text": FIRST})]
    items, report = curate(rows, "text", {"dedup_near": False})
    assert [i.origin for i in items] == ["f.jsonl:1", "f.jsonl:2", "f.jsonl:3"]
    assert report.step("dedup_exact").dropped == 1
