"""Runs as separate processes: launch, viewers, kill -9 + resume, stop, orphans, listing.

These start the real training child (``python -m tuitune.runner``), which pays the
torch/transformers/TRL import (~6 s) per launch, so there are few of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.cli import main as cli
from tuitune.core.errors import TuituneError
from tuitune.core.runs.events import EventTail, RunCurves, read_events
from tuitune.core.runs.follow import wait_run
from tuitune.core.runs.process import last_checkpoint, list_runs, run_state, start_run, stop_run
from tuitune.core.runs.rundir import RunDir, read_run_json

VIEWER = """
import sys, time
from tuitune.core.runs.events import EventTail
tail = EventTail(sys.argv[1])
while True:
    for e in tail.poll():
        print(e["type"], flush=True)
    time.sleep(0.05)
"""


def _follow(path: Path, out: RunCurves, until: str) -> None:
    """A viewer: tails the file (across stop and resume) until ``until`` arrives."""
    tail = EventTail(path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for e in tail.poll():
            out.add(e)
            if e["type"] == until:
                return
        time.sleep(0.05)


def test_viewers_come_and_go_and_stop_run_checkpoints(tiny_model, data, tmp_path, capsys):  # noqa: F811
    """Two viewers see the same curve; SIGKILL of a viewer leaves the child alone; stop_run
    (SIGTERM to the child's process group) checkpoints and stops."""
    run = RunDir(tmp_path / "run")
    spec = make_spec(tiny_model, data, run.root, max_steps=40, save_steps=100, eval_file="")
    viewers = [RunCurves(), RunCurves()]
    threads = [
        threading.Thread(target=_follow, args=(run.events, v, "stopped"), daemon=True)
        for v in viewers
    ]
    for t in threads:
        t.start()
    pid = start_run(spec, run)
    assert read_run_json(run)["pid"] == pid and os.getpgid(pid) == pid  # own session
    viewer = subprocess.Popen(
        [sys.executable, "-c", VIEWER, str(run.events)], stdout=subprocess.PIPE, text=True
    )
    assert viewer.stdout.readline().strip() in ("log", "start")
    viewer.kill()  # SIGKILL the viewer mid-run
    viewer.wait()
    seen: list[int] = []

    def on_event(e: dict) -> None:
        if e["type"] == "step":
            seen.append(e["step"])
            if len(seen) == 3:
                assert run_state(run) == "running"
                stop_run(run, timeout=0)  # SIGTERM only; the child checkpoints itself

    final = wait_run(run, on_event=on_event, poll=0.05)
    assert final["type"] == "stopped", final
    assert run_state(run) == "stopped"
    ckpt = last_checkpoint(run)
    assert ckpt is not None and ckpt.name == f"checkpoint-{final['step']}"
    assert final["step"] < 40

    for t in threads:
        t.join(60)
    assert viewers[0].final["type"] == viewers[1].final["type"] == "stopped"
    assert viewers[0].train_steps == viewers[1].train_steps == seen
    assert viewers[0].train_loss == viewers[1].train_loss


def test_kill_9_then_resume_equals_an_uninterrupted_run(tiny_model, data, tmp_path, capsys):  # noqa: F811
    """Same seed, dropout on: the resumed run's final adapter matches the uninterrupted one
    (tolerance 1e-6 absolute; on this CPU it is bit-identical)."""
    import torch
    from safetensors.torch import load_file

    kw = dict(max_steps=8, save_steps=2, save_total_limit=3, lora_dropout=0.1, eval_file="")
    rc, ref = train(make_spec(tiny_model, data, tmp_path / "ref", **kw))
    assert rc == 0

    run = RunDir(tmp_path / "killed")
    start_run(make_spec(tiny_model, data, run.root, **kw), run)

    def kill_after_checkpoint_4(e: dict) -> None:
        if e["type"] == "checkpoint" and e["step"] == 4:
            os.kill(read_run_json(run)["pid"], signal.SIGKILL)

    final = wait_run(run, on_event=kill_after_checkpoint_4, poll=0.02)
    assert final["type"] == "error" and final["kind"] == "killed"
    assert "SIGKILL" in final["message"]  # we launched it, so its exit status is known
    assert run_state(run) == "killed"
    assert [r.state for r in list_runs(tmp_path) if r.run.id == "killed"] == ["killed"]
    # A checkpoint the kill tore apart (no trainer_state.json) must not be resumed from.
    torn = run.checkpoints / "checkpoint-6"
    if not (torn / "trainer_state.json").exists():
        torn.mkdir(parents=True, exist_ok=True)
        (torn / "adapter_model.safetensors").write_bytes(b"torn")
    resumed_from = last_checkpoint(run)
    assert resumed_from is not None and int(resumed_from.name.split("-")[1]) >= 4

    assert cli(["resume", str(run.root)]) == 0
    assert run_state(run) == "finished"
    start = [e for e in read_events(run.events) if e["type"] == "start"][-1]
    assert start["start_step"] == int(resumed_from.name.split("-")[1])
    a = load_file(ref.adapter / "adapter_model.safetensors")
    b = load_file(run.adapter / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    curves = RunCurves().extend(read_events(run.events))
    ref_curves = RunCurves().extend(read_events(ref.events))
    assert curves.train_steps == ref_curves.train_steps == list(range(1, 9))
    assert curves.train_loss == pytest.approx(ref_curves.train_loss, abs=1e-6)


def test_unwritable_run_directory_is_one_line(tiny_model, data, tmp_path):  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    run = RunDir(blocker / "run")
    with pytest.raises(TuituneError, match="not writable"):
        start_run(make_spec(tiny_model, data, run.root), run)


def test_runs_command_lists_states(tiny_model, data, tmp_path, capsys):  # noqa: F811
    rc, run = train(make_spec(tiny_model, data, tmp_path / "runs" / "done", max_steps=1))
    assert rc == 0
    (tmp_path / "runs" / "ghost").mkdir()
    (tmp_path / "runs" / "ghost" / "run.json").write_text('{"pid": 999999999, "method": "lora"}')
    assert cli(["runs", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "finished" in out and "1/1" in out
    assert "ghost" in out and "killed" in out
    assert cli(["resume", str(run.root)]) == 2  # finished runs are not resumed
