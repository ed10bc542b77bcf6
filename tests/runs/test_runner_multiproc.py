"""Two training processes on CPU (torchrun, gloo backend) against one process with the same
global batch: the logged losses agree within 1e-3 (measured: equal to 4 decimals)."""

from __future__ import annotations

import pytest
from runner_kit import make_spec, train

from tuitune.core.runs.events import read_events
from tuitune.core.runs.follow import wait_run
from tuitune.core.runs.process import child_command, start_run
from tuitune.core.runs.rundir import RunDir


def test_child_command_uses_torchrun_on_cpu_and_accelerate_on_gpus(tmp_path, monkeypatch):
    from tuitune.core.runs import process as runs

    cmd = child_command(tmp_path / "spec.json", num_processes=2)
    assert "torch.distributed.run" in cmd and cmd[cmd.index("--nproc_per_node") + 1] == "2"
    monkeypatch.setattr(runs, "_cuda_devices", lambda: 4)
    cmd = child_command(tmp_path / "spec.json", num_processes=4, fsdp=True, resume=True)
    assert cmd[2] == "accelerate.commands.launch" and "--multi_gpu" in cmd and "--use_fsdp" in cmd
    assert cmd[-2:] == [str(tmp_path / "spec.json"), "--resume"]


@pytest.mark.slow
def test_two_processes_match_one(tiny_model, data, tmp_path):  # noqa: F811
    kw = dict(max_steps=4, eval_file="", lora_dropout=0.0, save_steps=4)
    rc, one = train(
        make_spec(tiny_model, data, tmp_path / "one", gradient_accumulation_steps=2, **kw)
    )
    assert rc == 0
    two = RunDir(tmp_path / "two")
    start_run(
        make_spec(tiny_model, data, two.root, gradient_accumulation_steps=1, **kw),
        two,
        num_processes=2,
    )
    final = wait_run(two)
    assert final["type"] == "finished", final
    events = read_events(two.events)
    assert [e["num_processes"] for e in events if e["type"] == "start"] == [2]
    assert sum(e["type"] == "finished" for e in events) == 1  # only rank 0 writes events
    loss_one = [e["loss"] for e in read_events(one.events) if e["type"] == "step"]
    loss_two = [e["loss"] for e in events if e["type"] == "step"]
    assert len(loss_two) == 4
    assert loss_two == pytest.approx(loss_one, abs=1e-3)
    assert (two.adapter / "adapter_model.safetensors").is_file()
