"""A real ``tuitune replay`` end to end on the tiny model, two training steps: train in the
child process, evaluate base vs tuned, and every figure the user reads has a before, an after
and an interval (issue 19: no fast test ran a replay that succeeded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tuitune.core.evaluation.scoring import EvalResults

PEOPLE = [("Ada", 36, "Oslo"), ("Bob", 41, "Rome"), ("Cy", 29, "Lima"), ("Di", 52, "Kyiv")]
SYSTEM = "Reply with one JSON object with keys name, age, city."


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path.name


def _session(tmp_path: Path, model: Path) -> Path:
    train, evals = [], []
    for i in range(12):
        name, age, city = PEOPLE[i % 4]
        user = {"role": "user", "content": f"{name} is {age + i}, lives in {city}."}
        answer = json.dumps({"name": name, "age": age + i, "city": city})
        train.append({"messages": [user, {"role": "assistant", "content": answer}]})
    for name, age, city in PEOPLE:
        evals.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"{name}, {age}, from {city}."},
                ],
                "reference": {"name": name, "age": age, "city": city},
            }
        )
    general = [
        {"text": "The quick brown fox jumps over the lazy dog."},
        {"text": "Paris is the capital of France."},
        {"messages": [{"role": "user", "content": "Capital of Italy?"}], "reference": "Rome"},
        {"messages": [{"role": "user", "content": "Capital of Peru?"}], "reference": "Lima"},
    ]
    session = {
        "schema_version": 1,
        "name": "tiny replay",
        "model": {"ref": str(model)},
        "data": {"train": [_jsonl(tmp_path / "train.jsonl", train)], "val_ratio": 0.2},
        "evaluation": {
            "task": "json_extract",
            "eval_file": _jsonl(tmp_path / "eval.jsonl", evals),
            "general_file": _jsonl(tmp_path / "general.jsonl", general),
            "max_new_tokens": 8,
        },
        "spec": {
            "method": "lora",
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 128,
            "gradient_checkpointing": False,
            "learning_rate": 0.01,
            "lora_r": 8,
            "lora_alpha": 16,
            "save_steps": 2,
            "eval_steps": 2,
            "logging_steps": 1,
        },
    }
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session, indent=2), encoding="utf-8")
    return path


def test_replay_on_the_tiny_model_reports_before_after_and_interval(
    tmp_path: Path, tiny_model: Path
) -> None:
    session = _session(tmp_path, tiny_model)
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tuitune", "replay", str(session), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,  # 140 s measured on the shared 2-core machine at load ~20
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]

    # the run trained for real and finished
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2]
    assert any(e["type"] == "finished" for e in events)
    assert (run / "adapter" / "adapter_config.json").is_file()

    # results.json: every comparison has both sides and an interval around its delta
    results = EvalResults.load(run / "eval" / "results.json")
    by = {c.metric: c for c in results.comparisons}
    assert {"json_valid", "eval_loss", "perplexity", "general_perplexity"} <= set(by), sorted(by)
    assert "general_answers" in by
    for c in results.comparisons:
        assert c.before is not None and c.after is not None, c
        assert c.delta is not None and c.ci_low is not None and c.ci_high is not None, c
        assert c.ci_low <= c.delta <= c.ci_high, c
        assert c.n > 0
    assert by["json_valid"].n == 4 and by["eval_loss"].n == 4
    # the adapter changed the model: the loss on the eval answers moved
    assert by["eval_loss"].before != by["eval_loss"].after
    assert results.forgetting and "within_bound" in results.forgetting

    # report.md: one table row per comparison, with before, after and a [low, high] interval
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "before" in report and "after" in report
    table = [ln for ln in report.splitlines() if ln.startswith("| ") and "[" in ln]
    assert len(table) >= len(results.comparisons)
    for line in table[: len(results.comparisons)]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) >= 5 and cells[2] not in ("", "-") and cells[3] not in ("", "-")
        assert "[" in cells[4] and "]" in cells[4], line

    # the printed summary (plain, not a terminal): a row per comparison with both sides
    lines = proc.stdout.splitlines()
    header = next(
        i for i, ln in enumerate(lines) if ln.split()[:4] == ["metric", "n", "before", "after"]
    )
    rows = lines[header + 1 : header + 1 + len(results.comparisons)]
    assert len(rows) == len(results.comparisons)
    for row in rows:
        assert " - " not in f" {row} ", row
    assert f"report: {run / 'report.md'}" in proc.stdout
    print(f"replay took {elapsed:.1f} s")
