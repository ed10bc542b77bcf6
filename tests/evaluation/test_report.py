"""report.md, the loss-curve image and the summary rows, from recorded figures."""

from __future__ import annotations

import json
from pathlib import Path

from tuitune.core.evaluation.report import summary_rows, write_report
from tuitune.core.evaluation.scoring import EvalResults, finalize
from tuitune.core.runs.events import EventWriter
from tuitune.core.runs.rundir import RunDir


def _results(run: RunDir, *, applied: bool = True) -> EvalResults:
    raw = {
        "task": "json_extract",
        "headline": "exact_match",
        "model": "/models/tiny",
        "adapter": str(run.adapter),
        "seed": 7,
        "decoding": {"max_new_tokens": 64},
        "task_scores": {
            "exact_match": {"before": [0.0] * 50, "after": [1.0] * 45 + [0.0] * 5},
            "field_accuracy": {
                "before": [0.5] * 25 + [0.25] * 25,
                "after": [0.5] * 25 + [0.25] * 24 + [0.5],
            },
        },
        "loss": {
            "before": {"nll_sum": [30.0] * 50, "tokens": [20] * 50},
            "after": {"nll_sum": [4.0] * 50, "tokens": [20] * 50},
        },
        "general": {
            "text_before": {"nll_sum": [30.0, 34.0], "tokens": [10, 10]},
            "text_after": {"nll_sum": [30.5, 34.2], "tokens": [10, 10]},
            "qa_before": [1.0, 0.0, 1.0],
            "qa_after": [1.0, 0.0, 1.0],
        },
        "generations": [
            {
                "prompt": "Ada | Lovelace\nis 36",
                "reference": {"name": "Ada"},
                "before": "Sure!",
                "after": '{"name": "Ada"}',
            }
        ],
        "adapter_check": {
            "applied": applied,
            "max_logit_diff": 0.3 if applied else 0.0,
            "probe_rows": 4,
            "message": "the tuned model is identical to the base",
        },
        "environment": {"torch": "2.x", "device": "cpu"},
        "timing": {"eval_s": 12.5},
    }
    return EvalResults.from_dict(finalize(raw, seed=7))


def _run(tmp_path: Path, name: str = "run-1") -> RunDir:
    run = RunDir(tmp_path / name)
    run.root.mkdir(parents=True)
    (run.root / "spec.json").write_text(
        json.dumps({"method": "lora", "learning_rate": 5e-4, "lora_r": 16})
    )
    run.data.mkdir()
    (run.data / "manifest.json").write_text(json.dumps({"train_rows": 432, "eval_rows": 48}))
    with EventWriter(run.events) as ev:
        for step in range(1, 21):
            ev.emit("step", step=step, loss=3.0 / step)
            if step % 10 == 0:
                ev.emit("eval", step=step, eval_loss=1.0 / step)
        ev.emit("finished", step=20, train_runtime=42.0)
    return run


def test_summary_rows_carry_n_and_significance(tmp_path: Path) -> None:
    rows = {r[0]: r for r in summary_rows(_results(_run(tmp_path)))}
    assert rows["exact match"] == ("exact match", "50", "0.0%", "90.0%", "+90.0 pts, improved")
    assert rows["field accuracy"][4].endswith("not significant")
    assert rows["eval perplexity"][1] == "50"
    assert rows["general questions answered"][4] == "+0.0 pts, no change"
    assert all(len(r) == 5 for r in rows.values())


def test_report_has_tables_image_config_manifest_environment(tmp_path: Path) -> None:
    run = _run(tmp_path)
    path = write_report(run, None, _results(run))
    text = path.read_text()
    assert path == run.report
    assert "| exact match | 50 | 0.0% | 90.0% | +90.0 [" in text
    assert "not significant" in text
    assert "## Forgetting check" in text and "within the bound" in text
    assert "![train and eval loss](eval/loss_curves.png)" in text
    png = run.eval / "loss_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Ada \\| Lovelace<br>is 36" in text  # table cells escaped
    assert "learning_rate" in text and '"train_rows": 432' in text
    assert "| device | cpu |" in text and "Training time: 42.0 s" in text
    assert "Adapter applied (tuned differs from base): yes" in text


def test_report_shouts_when_the_adapter_changed_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path)
    text = write_report(run, None, _results(run, applied=False)).read_text()
    assert "> **Warning:** the tuned model is identical to the base" in text
    assert "Adapter applied (tuned differs from base): **NO**" in text


def test_report_without_training_events_has_no_image(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "bare")
    run.root.mkdir()
    text = write_report(run, None, _results(run)).read_text()
    assert "Loss curves" not in text and not (run.eval / "loss_curves.png").exists()


def test_compare_prints_runs_side_by_side(tmp_path: Path, capsys) -> None:
    import argparse

    from tuitune.commands import compare
    from tuitune.core.atomic import write_json_atomic

    runs = []
    for name, applied in (("run-a", True), ("run-b", False)):
        run = _run(tmp_path, name)
        write_json_atomic(run.eval / "results.json", _results(run, applied=applied).data)
        runs.append(str(run.root))
    assert compare.run(argparse.Namespace(runs=runs, json=False)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["metric", "n", "base", "run-a", "run-b"]
    em = next(line for line in out if line.startswith("exact match"))
    assert em.split()[:4] == ["exact", "match", "50", "0.0%"]
    assert em.count("90.0% (+90.0 pts, improved)") == 2
    assert any("warning: the tuned model is identical" in line for line in out)


def test_compare_names_a_run_without_results(tmp_path: Path) -> None:
    import argparse

    import pytest

    from tuitune.commands import compare
    from tuitune.core.errors import TuituneError

    run = _run(tmp_path)
    with pytest.raises(TuituneError, match="no evaluation results"):
        compare.run(argparse.Namespace(runs=[str(run.root)], json=False))


def test_perplexity_in_the_forgetting_group_is_not_a_percentage() -> None:
    from tuitune.core.evaluation.figures import fmt_value
    from tuitune.core.evaluation.scoring import Comparison

    c = Comparison("general_perplexity", 8, 25.68, 25.12, group="forgetting")
    assert fmt_value(c, c.before) == "25.68"
