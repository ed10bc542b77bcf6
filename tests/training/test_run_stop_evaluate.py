"""A replay whose run is stopped by ``tuitune stop`` says so and exits 0; the stopped run is
then evaluated by ``tuitune evaluate`` from its own session (its last checkpoint), listed by
``tuitune runs --json`` with who stopped it, and found by ``compare``. Tiny model, real
processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from test_replay_tiny import _session

from tuitune.cli import main as cli
from tuitune.core.runs.events import read_events
from tuitune.core.runs.rundir import RunDir


def _wait_for_steps(out: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> RunDir:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for p in out.glob("*/events.jsonl"):
            if sum(e["type"] == "step" for e in read_events(p)) >= n:
                return RunDir(p.parent)
        time.sleep(0.2)
    raise AssertionError("no steps")


def test_stop_a_replay_then_evaluate_and_list_it(tmp_path: Path, tiny_model: Path, capsys):
    session = _session(tmp_path, tiny_model)
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tuitune", "replay", str(session), "--out", str(out)]
    cmd += ["--set", "max_steps=400", "--set", "save_steps=1000", "--set", "eval_steps=1000"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        run = _wait_for_steps(out, 2, proc)
        assert cli(["stop", str(run.root)]) == 0
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout[-3000:]
    stopped = [e for e in read_events(run.events) if e["type"] == "stopped"][-1]
    assert stopped["by"] == "tuitune stop"
    assert f"stopped at step {stopped['step']}, resume with tuitune resume {run.root}" in stdout
    assert "error" not in stdout.splitlines()[-1]
    capsys.readouterr()

    # compare points at the command that evaluates it
    assert cli(["compare", str(run.root)]) == 2
    assert f"tuitune evaluate {run.root}" in capsys.readouterr().err

    assert cli(["evaluate", str(run.root), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["step"] == stopped["step"]
    assert done["tuned"].endswith(f"checkpoint-{stopped['step']}")
    assert {r["metric"] for r in done["rows"]} and (run.eval / "results.json").is_file()
    from tuitune.core.atomic import default_file_mode

    assert run.report.is_file() and (run.report.stat().st_mode & 0o777) == default_file_mode()

    assert cli(["compare", str(run.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]

    assert cli(["runs", "--out", str(out), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["state"] == "stopped" and "tuitune stop" in row["reason"]
    assert row["step"] == stopped["step"]

    from tuitune.core.runs.session_of import run_session

    own = run_session(run)  # what attach restores: the run's session, not a default
    assert own.model.ref == str(tiny_model) and own.name == "tiny replay"
    assert Path(own.evaluation.eval_file).is_absolute() and own.path == ""
