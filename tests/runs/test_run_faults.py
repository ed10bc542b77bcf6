"""Faults a run must survive on its own, injected on CPU: out of memory at a chosen step, a
disk too full for the next checkpoint, a disk that fills up in the middle of one, a stop
someone asked for, and a child that vanished. Each ends as an event that says what happened,
and nothing already on disk is lost."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from runner_kit import make_spec, of, train

from tuitune.core.runs.events import RunCurves, read_events
from tuitune.core.runs.process import last_checkpoint, list_runs, run_state
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec


def _ckpts(run: RunDir) -> list[str]:
    if not run.checkpoints.is_dir():
        return []
    return sorted(p.name for p in run.checkpoints.glob("checkpoint-*"))


def test_oom_halves_micro_batch_keeps_effective_batch_and_checkpoints(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("TUITUNE_TEST_OOM", "3:2")  # step 3 does not fit at micro-batch 2
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        max_steps=4,
        save_steps=2,
        save_total_limit=3,
        auto_oom_retry=True,
    )
    rc, run = train(spec)
    assert rc == 0
    (oom,) = of(run, "oom")
    assert oom["retry"] is True and oom["micro_batch"] == 2 and oom["step"] == 2
    assert oom["new_micro_batch"] == 1 and oom["new_gradient_accumulation_steps"] == 2
    assert oom["resume_from"].endswith("checkpoint-2")
    assert oom["advice"].index("per_device_train_batch_size=1") < oom["advice"].index("QLoRA")
    saved = TrainSpec.load(run.spec)  # resume reads this: it must not OOM again
    assert (saved.per_device_train_batch_size, saved.gradient_accumulation_steps) == (1, 2)
    finished = of(run, "finished")[0]
    assert finished["micro_batch"] * finished["gradient_accumulation_steps"] == 2
    assert _ckpts(run) == ["checkpoint-2", "checkpoint-4"]  # nothing deleted
    starts = of(run, "start")
    assert [s["start_step"] for s in starts] == [0, 2]
    assert starts[1]["spec"]["per_device_train_batch_size"] == 1
    assert RunCurves().extend(read_events(run.events)).train_steps == [1, 2, 3, 4]
    assert run.adapter.is_dir()


def test_oom_before_any_checkpoint_restarts_from_the_initial_weights(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Same seed, same effective batch: the retried run ends where a run that started at
    micro-batch 1 x accumulation 2 ends (the half-trained weights were put back)."""
    from safetensors.torch import load_file

    kw = dict(max_steps=3, save_steps=100, eval_file="", lora_dropout=0.0, auto_oom_retry=True)
    rc, ref = train(
        make_spec(
            tiny_model,
            data,
            tmp_path / "ref",
            per_device_train_batch_size=1,
            gradient_accumulation_steps=2,
            **kw,
        )
    )
    assert rc == 0
    monkeypatch.setenv("TUITUNE_TEST_OOM", "2")
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run", **kw))
    assert rc == 0
    (oom,) = of(run, "oom")
    assert oom["resume_from"] is None and oom["step"] == 1
    a = load_file(ref.adapter / "adapter_model.safetensors")
    b = load_file(run.adapter / "adapter_model.safetensors")
    import torch

    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_oom_at_micro_batch_one_is_a_clear_error_with_the_checklist(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("TUITUNE_TEST_OOM", "3:1")
    spec = make_spec(
        tiny_model, data, tmp_path / "run", per_device_train_batch_size=1, auto_oom_retry=True
    )
    rc, run = train(spec)
    assert rc == 4
    (oom,) = of(run, "oom")
    assert oom["retry"] is False and "already 1" in oom["why_not"]
    err = of(run, "error")[0]
    assert err["kind"] == "oom" and "gradient_checkpointing on" in err["fix"]
    assert _ckpts(run) == ["checkpoint-2"] and run_state(run) == "failed"


def test_stop_by_tuitune_then_oom_after_resume_loses_no_checkpoint(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        max_steps=8,
        save_steps=100,
        eval_file="",
        auto_oom_retry=True,
    )
    run = RunDir(Path(spec.output_dir))
    run.root.mkdir(parents=True)

    def stop_after_step_two() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["type"] == "step" and e["step"] >= 2 for e in read_events(run.events)):
                (run.root / "stop-request.json").write_text(json.dumps({"by": "tuitune stop"}))
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sender = threading.Thread(target=stop_after_step_two, daemon=True)
    sender.start()
    try:
        rc, run = train(spec, signals=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    sender.join(5)
    assert rc == 0
    stopped = of(run, "stopped")[0]
    assert stopped["by"] == "tuitune stop" and "SIGTERM" in stopped["reason"]
    at = stopped["step"]
    assert _ckpts(run) == [f"checkpoint-{at}"]

    monkeypatch.setenv("TUITUNE_TEST_OOM", f"{at + 1}:2")
    rc, run = train(TrainSpec.load(run.spec), resume=True)
    assert rc == 0
    (oom,) = of(run, "oom")
    assert oom["resume_from"].endswith(f"checkpoint-{at}")
    assert f"checkpoint-{at}" in _ckpts(run) and "checkpoint-8" in _ckpts(run)
    assert RunCurves().extend(read_events(run.events)).train_steps == list(range(1, 9))
    assert run_state(run) == "finished"


def test_too_little_free_space_stops_before_the_checkpoint(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("TUITUNE_TEST_FREE_BYTES", "1000")
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run", max_steps=4, save_steps=2))
    assert rc == 0
    (stopped,) = of(run, "stopped")
    assert stopped["kind"] == "disk" and stopped["step"] == 2 and stopped["checkpoint"] is None
    assert "disk nearly full" in stopped["reason"] and "GiB free" in stopped["reason"]
    assert "resume" in stopped["fix"]
    assert _ckpts(run) == [] and not run.adapter.exists()
    assert run_state(run) == "stopped"


def test_disk_full_in_the_middle_of_a_checkpoint_is_named(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """torch.save's stream writer fails the way it does on a full disk (a RuntimeError, not
    an OSError); 100 MiB is left, enough for the free-space check, not for the write."""
    import torch

    real_save = torch.save

    def full_disk_save(obj, f, *a, **k):  # noqa: ANN001
        if str(f).endswith("optimizer.pt") and "checkpoint-4" in str(f):
            Path(f).write_bytes(b"torn")
            raise RuntimeError(
                "[enforce fail at inline_container.cc:603] . unexpected pos 1024 vs 960"
            )
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setenv("TUITUNE_TEST_FREE_BYTES", str(100 * 2**20))
    spec = make_spec(tiny_model, data, tmp_path / "run", max_steps=6, save_steps=2)
    rc, run = train(spec)
    assert rc == 3
    (err,) = of(run, "error")
    assert err["kind"] == "disk" and "No space left on device" in err["message"]
    assert "0.10 GiB free" in err["message"] and "resume" in err["fix"]
    assert err["checkpoint"].endswith("checkpoint-2")
    assert _ckpts(run) == ["checkpoint-2"]  # the torn one is gone, the good one kept
    assert last_checkpoint(run).name == "checkpoint-2"
    (info,) = list_runs(tmp_path)
    assert info.state == "failed" and info.reason.startswith("disk full")


def test_a_vanished_child_is_recorded_as_killed_on_the_next_look(tmp_path):
    run = RunDir(tmp_path / "runs" / "gone")
    run.root.mkdir(parents=True)
    run.run_json.write_text(json.dumps({"pid": 999999999, "method": "lora", "events_offset": 0}))
    run.events.write_text(json.dumps({"v": 1, "type": "step", "step": 3, "loss": 1.5}) + "\n")
    assert run_state(run) == "killed"
    assert run_state(run) == "killed"
    killed = [e for e in read_events(run.events) if e.get("kind") == "killed"]
    assert len(killed) == 1 and killed[0]["step"] == 3 and "resume" in killed[0]["fix"]
    (info,) = list_runs(tmp_path / "runs")
    assert info.state == "killed" and "without a final event" in info.reason


@pytest.mark.parametrize("stage", ["nothing", "session-only"])
def test_failed_launch_folders_are_listed_and_pruned(tmp_path, stage, capsys):
    from tuitune.cli import main as cli
    from tuitune.core.runs.rundir import mark_failed

    base = tmp_path / "runs"
    empty = RunDir(base / "run-empty")
    empty.root.mkdir(parents=True)
    (empty.root / "session.json").write_text("{}")
    if stage == "nothing":
        mark_failed(empty, "data file does not exist: /x.jsonl")
    (info,) = list_runs(base)
    assert info.state == "failed" and info.reason
    assert cli(["runs", "--out", str(base), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["state"] == "failed" and row["id"] == "run-empty"
    assert cli(["runs", "--out", str(base), "--prune"]) == 0
    assert "run-empty" in capsys.readouterr().out
    assert not empty.root.exists()
