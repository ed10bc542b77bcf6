"""The plan: one object from session + hardware + data to the exact run, and the one launch
path both front ends use (fit gate, processes, effective batch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.hardware.gpu_table import GPUS, hardware_for, parse_gpu
from tuitune.core.hardware.probe import FakeGpu, FakeNVML, HardwareInfo, probe
from tuitune.core.method_defaults import defaults_for
from tuitune.core.runs.rundir import RunDir
from tuitune.core.session import load_session
from tuitune.core.spec import TrainSpec
from tuitune.core.training import plan as plan_mod
from tuitune.core.training.plan import SOURCES, launch_plan, make_plan, planned_fields

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "assets" / "sessions" / "quickstart.json"
PREFERENCE = ROOT / "assets" / "quickstart" / "preference.jsonl"
CPU = probe(nvml=FakeNVML([]))


def gpu24() -> HardwareInfo:
    return probe(nvml=FakeNVML([FakeGpu("NVIDIA GeForce RTX 4090", 24.0, 0.4, (8, 9))]))


def _session(tmp_path: Path, model: str, rows: list[dict], spec: dict, **extra) -> Path:
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = {"schema_version": 1, "model": {"ref": model}, "spec": spec, **extra}
    data["data"] = {"train": ["d.jsonl"], "val_ratio": 0.0, **extra.get("data", {})}
    p = tmp_path / "session.json"
    p.write_text(json.dumps(data))
    return p


SFT = [{"prompt": f"question {i}?", "completion": f"answer {i}."} for i in range(16)]


def test_quickstart_plan_has_every_part_with_reasons() -> None:
    plan = make_plan(load_session(QUICKSTART), hardware=CPU)
    d = plan.to_dict()
    assert {"spec", "levers", "launch", "estimate", "verdict"} <= set(d)
    assert d["verdict"] == "fits" and d["launch"]["strategy"] == "cpu"
    assert all(c.source in SOURCES and c.reason for c in plan.choices)
    src = {c.field: c.source for c in plan.choices}
    # the session's own values are the user's and win
    assert src["learning_rate"] == "user" and plan.spec.learning_rate == 5e-4
    assert src["max_steps"] == "user" and plan.spec.max_steps == 40
    # the recipe is on the path: every lever with its reason
    names = {lv["name"] for lv in d["levers"]}
    assert {"packing", "attn_implementation", "use_liger_kernel", "gradient_checkpointing"} <= names
    assert src["attn_implementation"] == "recipe" and plan.spec.attn_implementation == "sdpa"
    assert plan.estimate.setup.lora_dropout == plan.spec.lora_dropout == 0.05
    assert json.loads(json.dumps(d, default=str))["spec"] == plan.spec.to_dict()


def test_gpu_table_parses_names_and_counts() -> None:
    card, n = parse_gpu("A100-80GB x4")
    assert card.key == "A100-80GB" and n == 4 and card.bf16
    assert parse_gpu("t4")[0].key == "T4" and not parse_gpu("T4")[0].bf16
    assert parse_gpu("H100*2")[1] == 2
    with pytest.raises(TuituneError, match="unknown GPU"):
        parse_gpu("RTX 9999")
    assert all(g.memory_bytes > 10 * 2**30 and g.tflops_16bit > 0 for g in GPUS)
    hw = hardware_for("V100-16GB x2")
    assert len(hw.gpus) == 2 and hw.gpus[0].compute_capability == (7, 0)


def test_four_a100s_launch_four_processes_with_the_stated_effective_batch() -> None:
    plan = make_plan(load_session(QUICKSTART), gpu="A100-80GB x4")
    la = plan.launch
    assert la.num_processes == 4 and la.strategy == "ddp"
    assert la.command[2] == "accelerate.commands.launch"
    assert la.command[la.command.index("--num_processes") + 1] == "4"
    s = plan.spec
    assert la.effective_batch == s.per_device_train_batch_size * s.gradient_accumulation_steps * 4
    assert s.bf16 and not s.fp16


def test_v100_full_sft_of_a_1_5b_model_does_not_fit_with_adamw(tmp_path: Path) -> None:
    p = _session(tmp_path, "Qwen2.5-1.5B-Instruct", SFT, {"method": "full"})
    plan = make_plan(load_session(p), gpu="V100-16GB", overrides={"optim": "adamw_torch"})
    assert plan.verdict == "no" and plan.spec.fp16 and not plan.spec.bf16
    assert plan.advice and "does not fit" in plan.advice[0]
    assert "tokenizer" in " ".join(plan.notes)  # catalogue config only: planned on max_length
    with pytest.raises(TuituneError, match="does not fit"):
        plan_mod.check_fit(plan)
    plan_mod.check_fit(plan, force=True)


def test_v100_full_sft_inside_the_margin_is_refused_as_not_fitting(tmp_path: Path) -> None:
    """With every lever (8-bit paged AdamW, max_length 256) the estimate lands inside the 10%
    margin: that is the estimator's own error, so the gate stops it like a plan that does not
    fit, and says so."""
    p = _session(tmp_path, "Qwen2.5-1.5B-Instruct", SFT, {"method": "full"})
    plan = make_plan(load_session(p), gpu="V100-16GB")
    assert plan.verdict == "tight" and not plan.fits, plan.memory_line()
    assert plan.spec.method == "full"  # what the user asked for is kept, and judged
    assert "may run out of memory" in plan.memory_line()
    assert plan.advice[0].startswith("does not fit with the 10% margin")
    assert plan_mod.fit_refusal(plan) and "tight" in plan_mod.fit_refusal(plan)
    with pytest.raises(TuituneError, match="tight"):
        plan_mod.check_fit(plan)
    plan_mod.check_fit(plan, force=True)
    roomy = make_plan(load_session(p), gpu="A100-80GB")
    assert roomy.fits and plan_mod.fit_refusal(roomy) is None and not roomy.advice


@pytest.mark.parametrize("method", ["dpo", "reward", "grpo"])
def test_every_method_plans_with_its_own_defaults(method: str, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in PREFERENCE.read_text().splitlines()[:40]]
    if method == "grpo":
        rows = SFT
    p = _session(tmp_path, "Qwen2.5-0.5B-Instruct", rows, {"method": method})
    plan = make_plan(load_session(p), hardware=gpu24())
    assert plan.verdict != "no", plan.memory_line()
    lr = plan.choice("learning_rate")
    assert lr.source == "method default" and lr.value == defaults_for(method)["learning_rate"][0]
    assert "TRL" in lr.reason
    if method == "grpo":
        g = plan.spec.num_generations
        assert plan.estimate.setup.micro_batch % g == 0
        assert plan.estimate.components["generation_kv_cache"] > 0


def test_full_on_several_gpus_is_sharded_before_it_is_downgraded(tmp_path: Path) -> None:
    p = _session(tmp_path, "Qwen2.5-3B-Instruct", SFT, {})
    plan = make_plan(load_session(p), gpu="A100-40GB x4", overrides={"method": "full"})
    assert plan.spec.method == "full" and plan.launch.strategy == "fsdp" and plan.launch.fsdp
    assert "--use_fsdp" in plan.launch.command and plan.verdict != "no"


def test_max_length_from_the_data_and_rows_beyond_it_dropped(tmp_path: Path, tiny_model) -> None:
    rows = [{"prompt": "q" * (i % 7 + 1), "completion": "a" * (3 * i + 1)} for i in range(30)]
    plan = make_plan(load_session(_session(tmp_path, str(tiny_model), rows, {})), hardware=CPU)
    c = plan.choice("max_length")
    assert c.source == "data" and "longest example" in c.reason and c.value % 64 == 0
    assert "truncated" not in c.reason


def test_recorded_hardware_differs_and_replan(tmp_path: Path, tiny_model) -> None:
    answers = {"plan": {"hardware": {"accelerator": "cuda", "gpus": ["NVIDIA H100 80GB HBM3"]}}}
    spec = {"per_device_train_batch_size": 8, "gradient_checkpointing": True}
    p = _session(tmp_path, str(tiny_model), SFT, spec, answers=answers)
    kept = make_plan(load_session(p), hardware=CPU)
    assert kept.differs and "cuda" in kept.differs[0]
    assert kept.spec.per_device_train_batch_size == 8 and kept.spec.gradient_checkpointing
    assert kept.choice("per_device_train_batch_size").source == "user"
    again = make_plan(load_session(p), hardware=CPU, replan=True)
    assert again.choice("gradient_checkpointing").source != "user"
    assert again.spec.gradient_checkpointing is False  # the tiny model fits without it


@pytest.mark.slow
def test_refused_when_it_does_not_fit_then_forced(tmp_path: Path, tiny_model, monkeypatch) -> None:
    """A plan that does not fit this machine is refused before any data preparation; with
    --force it trains, and the spec.json it writes is the plan's spec."""
    from tuitune.replay import replay

    tiny_ram = dataclasses.replace(CPU, ram_total_bytes=2**20, ram_available_bytes=2**20)
    monkeypatch.setattr(
        plan_mod, "plan_hardware", lambda hardware=None, gpu=None: (tiny_ram, "probe")
    )
    p = _session(tmp_path, str(tiny_model), SFT, {"max_steps": 2, "save_steps": 2})
    with pytest.raises(TuituneError, match="does not fit"):
        replay(p, out=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    result = replay(p, out=tmp_path / "forced", force=True)
    assert result.final["type"] == "finished"
    written = TrainSpec.load(result.run.spec)
    planned = make_plan(load_session(p), hardware=tiny_ram).spec
    assert planned_fields(written) == planned_fields(planned)
    assert json.loads((result.run.root / "plan.json").read_text())["verdict"] == "no"


@pytest.mark.slow
def test_two_cpu_processes_through_the_launch_path(tmp_path: Path, tiny_model) -> None:
    """launch_plan starts the plan's processes (torchrun, gloo) with the effective batch it
    states: one epoch of 16 rows at effective batch 4 is 4 optimizer steps."""
    from tuitune.core.runs.events import read_events
    from tuitune.core.runs.follow import wait_run

    spec = {
        "max_steps": -1,
        "num_train_epochs": 1.0,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "save_steps": 100,
    }
    session = load_session(_session(tmp_path, str(tiny_model), SFT, spec))
    plan = make_plan(session, hardware=CPU, num_processes=2)
    assert plan.launch.num_processes == 2 and plan.launch.strategy == "ddp"
    assert "torch.distributed.run" in plan.launch.command
    assert plan.spec.gradient_accumulation_steps == 1 and plan.launch.effective_batch == 4
    run = RunDir(tmp_path / "run")
    launch_plan(plan, session, run)
    final = wait_run(run)
    assert final["type"] == "finished", final
    start = [e for e in read_events(run.events) if e["type"] == "start"]
    assert start[0]["num_processes"] == 2
    assert start[0]["total_steps"] == 16 // plan.launch.effective_batch


def test_a_gpu_torch_cannot_use_is_named_in_the_plan() -> None:
    from tuitune.core.hardware.torch_device import torch_build

    if not torch_build().cpu_only:
        pytest.skip("this torch has CUDA: the CPU-build case cannot be shown here")
    plan = make_plan(load_session(QUICKSTART), hardware=gpu24())
    assert "CPU-only build" in plan.notes[0] and "4090" in plan.notes[0]
    assert make_plan(load_session(QUICKSTART), gpu="H100").notes[0] != plan.notes[0]


def test_plan_command_json_has_the_five_keys(tmp_path: Path, tiny_model) -> None:
    import os
    import subprocess
    import sys

    p = _session(tmp_path, str(tiny_model), SFT, {"max_steps": 3})
    proc = subprocess.run(
        [sys.executable, "-m", "tuitune", "plan", str(p), "--gpu", "L4 x2", "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert {"spec", "levers", "launch", "estimate", "verdict"} <= set(d)
    assert d["launch"]["num_processes"] == 2 and d["spec"]["max_steps"] == 3
    assert not (tmp_path / "runs").exists()


def test_a_planned_spec_plans_again_to_itself(tmp_path: Path, tiny_model) -> None:
    """With packing set in the session the batch counts packed rows (TRL's unit), so the
    plan's own spec, pinned into a session (a scheduler job's nodes), is planned unchanged."""
    rows = [{"prompt": "q" * (i % 7 + 1), "completion": "a" * (9 * i + 1)} for i in range(40)]
    first = make_plan(load_session(_session(tmp_path, str(tiny_model), rows, {})), hardware=CPU)
    assert first.spec.packing
    pinned = planned_fields(first.spec)
    pinned.update(per_device_train_batch_size=3, gradient_accumulation_steps=2)
    again = make_plan(load_session(_session(tmp_path, str(tiny_model), rows, pinned)), hardware=CPU)
    s = again.spec
    assert (s.per_device_train_batch_size, s.gradient_accumulation_steps) == (3, 2)
    assert again.choice("per_device_train_batch_size").source == "user"
    assert planned_fields(again.spec) == {
        **planned_fields(first.spec),
        **{"per_device_train_batch_size": 3, "gradient_accumulation_steps": 2},
    }
