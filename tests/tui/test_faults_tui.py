"""The Evaluate screen shows before under "before" and after under "after", read back from
the table a user sees (issue 19: a swap was caught only by snapshot SVGs)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable  # noqa: E402
from wizard_kit import recorded_events, write_run  # noqa: E402

from tuitune.core.evaluation.report import summary_rows  # noqa: E402
from tuitune.core.evaluation.scoring import EvalResults, finalize  # noqa: E402
from tuitune.tui import messages as m  # noqa: E402
from tuitune.tui.app import TuituneApp  # noqa: E402
from tuitune.tui.defaults import new_session  # noqa: E402


def _results() -> EvalResults:
    """Exact match 10% -> 80% of 40 prompts, eval loss 2.0 -> 0.5 (distinct on every side)."""
    raw = {
        "task": "json_extract",
        "headline": "exact_match",
        "task_scores": {
            "exact_match": {"before": [1.0] * 4 + [0.0] * 36, "after": [1.0] * 32 + [0.0] * 8}
        },
        "loss": {
            "before": {"nll_sum": [20.0] * 40, "tokens": [10] * 40},
            "after": {"nll_sum": [5.0] * 40, "tokens": [10] * 40},
        },
    }
    return EvalResults.from_dict(finalize(raw, seed=0))


async def test_evaluate_table_rows_read_back_before_then_after(tmp_path: Path) -> None:
    results = _results()
    run = write_run(tmp_path / "run-fixture", recorded_events(5))
    app = TuituneApp(new_session(), attach=run, start_step="train")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.4)
        app.eval_status = "x"  # keep the screen from starting a real evaluation
        app.goto("evaluate")
        await pilot.pause()
        app.post_message(
            m.EvaluationFinished(results, summary_rows(results), tmp_path / "report.md")
        )
        await pilot.pause(0.7)
        table = app.screen.query_one("#summary", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:4] == ["metric", "n", "before", "after"]
        assert labels[4].startswith("change")
        labels[4] = "change"
        rows = {str(r[0]): [str(c) for c in r] for r in map(table.get_row_at, range(3))}
        assert table.row_count == len(results.comparisons) == 3
        em = next(v for k, v in rows.items() if "exact" in k.lower())
        col = dict(zip(labels, em))
        assert col["n"] == "40"
        assert col["before"] == "10.0%" and col["after"] == "80.0%"
        assert col["change"].startswith("+70.0") and "improved" in col["change"]
        assert "green" in str(table.get_row_at(list(rows).index(em[0]))[4].style)
        loss = next(v for k, v in rows.items() if "loss" in k.lower())
        col = dict(zip(labels, loss))
        assert col["before"] == "2.0000" and col["after"] == "0.5000"
        assert col["change"].startswith("-1.5000") and "improved" in col["change"]
        assert "+70.0" not in loss[4] and "-70.0" not in em[4]  # after - before, not swapped


def test_summary_rows_put_before_before_after() -> None:
    for row, c in zip(summary_rows(_results()), _results().comparisons):
        _, n, before, after, _ = row
        assert n == str(c.n)
        assert c.before is not None and c.after is not None and c.before != c.after
        assert (before, after) != (after, before)
    em = summary_rows(_results())[0]
    assert em[2:4] == ("10.0%", "80.0%")
