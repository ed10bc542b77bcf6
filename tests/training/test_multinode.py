"""Several machines: the launch commands, the flags' checks, and two "nodes" on this machine
(two ``tuitune replay --nodes 2`` processes, each a torchrun on the static rendezvous at
127.0.0.1, gloo) training the tiny model like one process does; rank 1 killed mid-run ends
the run as failed with a node-lost event, and ``tuitune resume`` on both nodes continues it
to the same losses as one uninterrupted process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.runs.events import read_events
from tuitune.core.runs.nodes import Nodes, new_worker_dir, parse_nodes
from tuitune.core.runs.process import child_command, list_runs, run_state
from tuitune.core.runs.rundir import RunDir, read_run_json


def test_parse_nodes_checks_the_layout_before_any_work():
    assert parse_nodes(1, 0, None) == Nodes()
    two = parse_nodes(2, 1, "10.0.0.1:29500")
    assert (two.count, two.rank, two.host, two.port, two.is_worker) == (2, 1, "10.0.0.1", 29500, 1)
    assert parse_nodes(2, 0, "[fe80::1]:6000").host == "fe80::1"
    for bad, words in [
        ((2, 0, None), "needs --rdzv"),
        ((2, 2, "h:1"), "out of range"),
        ((2, 0, "host"), "not HOST:PORT"),
        ((2, 0, "host:70000"), "not HOST:PORT"),
        ((0, 0, None), "at least 1"),
    ]:
        with pytest.raises(TuituneError, match=words) as err:
            parse_nodes(*bad)
        assert err.value.fix


def test_child_command_on_several_machines(tmp_path, monkeypatch):
    from tuitune.core.runs import process as runs

    nodes = Nodes(count=2, rank=1, rdzv="10.0.0.1:29500")
    cmd = child_command(tmp_path / "spec.json", num_processes=1, nodes=nodes, cuda=False)
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--standalone" not in cmd
    arg = {k: cmd[i + 1] for i, k in enumerate(cmd[:-1]) if k.startswith("--")}
    assert arg["--nnodes"] == "2" and arg["--node_rank"] == "1"
    assert arg["--rdzv_backend"] == "static" and arg["--rdzv_endpoint"] == "10.0.0.1:29500"
    assert arg["--nproc_per_node"] == "1"
    monkeypatch.setattr(runs, "_cuda_devices", lambda: 4)
    cmd = child_command(tmp_path / "spec.json", num_processes=4, nodes=nodes, fsdp=True)
    arg = {k: cmd[i + 1] for i, k in enumerate(cmd[:-1]) if k.startswith("--")}
    assert cmd[2] == "accelerate.commands.launch" and "--use_fsdp" in cmd
    assert arg["--num_processes"] == "8" and arg["--num_machines"] == "2"  # accelerate: total
    assert arg["--machine_rank"] == "1" and arg["--main_process_ip"] == "10.0.0.1"
    assert arg["--main_process_port"] == "29500"


def test_worker_folders_are_not_runs(tmp_path):
    worker = new_worker_dir(tmp_path, Nodes(2, 1, "127.0.0.1:1"))
    (worker.root / "run.json").write_text(json.dumps({"role": "worker"}))
    (worker.root / "spec.json").write_text("{}")
    assert worker.root.parent.name == ".workers" and list_runs(tmp_path) == []


def test_replay_refuses_a_bad_layout_before_any_work(tmp_path, capsys):
    from tuitune.cli import main

    out = tmp_path / "runs"
    rc = main(["replay", "assets/sessions/quickstart.json", "--out", str(out), "--nodes", "2"])
    assert rc == 2 and "--rdzv HOST:PORT" in capsys.readouterr().err
    assert not out.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(path: Path, model: Path, train: str, **spec) -> Path:
    base = dict(
        schema_version=1,
        method="lora",
        max_steps=20,
        per_device_train_batch_size=2,
        max_length=128,
        gradient_checkpointing=False,
        learning_rate=1e-2,
        save_steps=2,
        lora_dropout=0.0,
        logging_steps=1,
    )
    session = {
        "schema_version": 1,
        "id": path.stem,
        "model": {"ref": str(model)},
        "data": {"train": [train], "val_ratio": 0.0},
        "spec": {**base, **spec},
    }
    path.write_text(json.dumps(session), encoding="utf-8")
    return path


def _tuitune(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tuitune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _losses(run: RunDir) -> dict[int, float]:
    """step -> loss, the latest launch's value where a step was trained twice."""
    return {e["step"]: e["loss"] for e in read_events(run.events) if e["type"] == "step"}


def _complete(run: RunDir) -> list[int]:
    """Steps of this node's complete checkpoints (trainer_state.json is written last)."""
    if not run.checkpoints.is_dir():
        return []
    return sorted(
        int(p.name.split("-")[1])
        for p in run.checkpoints.glob("checkpoint-*")
        if (p / "trainer_state.json").is_file()
    )


def _rank1_pid(worker: RunDir) -> int | None:
    """The training process under the worker node's torchrun (rank 1 of 2)."""
    import psutil

    pid = read_run_json(worker).get("pid")
    if not pid:
        return None
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return None
    return kids[0].pid if kids else None


@pytest.mark.slow
def test_two_nodes_match_one_and_resume_after_losing_rank_1(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
):
    # One session for both: 2 x 2 accumulation on one process, 2 x 1 on each of two nodes.
    one = two = _session(
        tmp_path / "s.json", tiny_model, data["train"], gradient_accumulation_steps=2
    )
    rdzv = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "two"
    flags = ["--out", str(out), "--nodes", "2", "--rdzv", rdzv]
    node0 = _tuitune("replay", str(two), *flags, "--node-rank", "0")
    node1 = _tuitune("replay", str(two), *flags, "--node-rank", "1")

    # The run lives on node 0 only; node 1 trains into a worker folder that is not a run.
    _wait_for(lambda: len(list_runs(out)) == 1, 120, "node 0's run folder")
    run = list_runs(out)[0].run
    _wait_for(lambda: (out / ".workers").is_dir() and any((out / ".workers").iterdir()), 120, "w")
    (worker_root,) = (out / ".workers").iterdir()
    worker = RunDir(worker_root)
    # Both nodes hold two complete checkpoints: lose rank 1 (kill -9) while training goes on.
    _wait_for(lambda: len(_complete(worker)) >= 2 and len(_complete(run)) >= 2, 240, "ckpts")
    pid = _rank1_pid(worker)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    text0, _ = node0.communicate(timeout=120)
    text1, _ = node1.communicate(timeout=120)
    assert node0.returncode == 2 and node1.returncode == 2, text0 + text1
    assert read_run_json(worker)["role"] == "worker" and not worker.events.exists()
    assert "another machine is gone" in text0
    final = read_events(run.events)[-1]
    assert final["type"] == "error" and final["kind"] == "node_lost", final
    assert run_state(run) == "failed"
    first = _losses(run)
    assert first and max(first) < 20
    plan = json.loads((run.root / "plan.json").read_text())
    assert plan["launch"]["nodes"] == 2 and plan["launch"]["effective_batch"] == 4
    assert plan["spec"]["gradient_accumulation_steps"] == 1

    # Node 1's newest checkpoint torn (as if killed while saving it): both nodes must resume
    # from the newest step they both hold, each from its own copy.
    newest = _complete(worker)[-1]
    (worker.checkpoints / f"checkpoint-{newest}" / "trainer_state.json").unlink()
    agreed = max(set(_complete(worker)) & set(_complete(run)))
    assert agreed < newest
    r0 = _tuitune("resume", str(run.root))
    r1 = _tuitune("resume", str(worker.root))
    # Meanwhile one process with the same session: the baseline (same effective batch).
    base = _tuitune("replay", str(one), "--out", str(tmp_path / "one"))
    text0, _ = r0.communicate(timeout=300)
    text1, _ = r1.communicate(timeout=300)
    assert r0.returncode == 0 and r1.returncode == 0, text0 + text1
    text, _ = base.communicate(timeout=300)
    assert base.returncode == 0, text
    (one_run,) = list_runs(tmp_path / "one")
    baseline = _losses(one_run.run)
    assert sorted(baseline) == list(range(1, 21))
    events = read_events(run.events)
    starts = [e for e in events if e["type"] == "start"]
    assert [s["num_processes"] for s in starts] == [2, 2] and starts[1]["start_step"] == agreed
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(f"resuming from checkpoint-{agreed}" in m and "not on every node" in m for m in logs)
    assert events[-1]["type"] == "finished" and events[-1]["step"] == 20
    assert sum(e["type"] == "finished" for e in events) == 1  # only global rank 0 writes
    resumed = _losses(run)
    assert sorted(resumed) == list(range(1, 21))
    for step, loss in first.items():
        assert loss == pytest.approx(baseline[step], abs=1e-3), step
    assert [resumed[s] for s in range(1, 21)] == pytest.approx(
        [baseline[s] for s in range(1, 21)], abs=1e-3
    )
    assert (run.adapter / "adapter_model.safetensors").is_file()
    assert list_runs(out)[0].state == "finished" and len(list_runs(out)) == 1
