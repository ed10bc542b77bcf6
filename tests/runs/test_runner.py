"""The training child, in-process on the tiny model: every method trains a few real steps
through TRL, writes the event protocol and saves its result; stop signals and errors end
with one final event."""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from runner_kit import make_spec, of, train

from tuitune.core.runs.events import read_events
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec


def test_lora_sft_writes_events_checkpoints_and_adapter(tiny_model, data, tmp_path):
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run"))
    assert rc == 0
    events = read_events(run.events)
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "finished" and kinds.count("start") == 1
    start = of(run, "start")[0]
    assert start["total_steps"] == 4 and start["spec"]["method"] == "lora"
    steps = of(run, "step")
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    for e in steps:
        assert e["loss"] > 0 and e["learning_rate"] is not None and e["grad_norm"] is not None
        assert e["memory_gib"] > 0 and e["tokens_per_second"] > 0
    assert steps[-1]["tokens_seen"] > steps[0]["tokens_seen"] > 0
    evals = of(run, "eval")
    assert len(evals) >= 2 and evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert [e["step"] for e in of(run, "checkpoint")] == [2, 4]
    assert (run.checkpoints / "checkpoint-4" / "optimizer.pt").is_file()
    final = events[-1]
    assert final["adapter_dir"] == str(run.adapter) and final["train_runtime"] > 0
    assert (run.adapter / "adapter_config.json").is_file()
    assert (run.adapter / "tokenizer_config.json").is_file()
    assert not list(run.root.glob(".adapter.tmp-*"))


def test_full_sft_saves_the_whole_model(tiny_model, data, tmp_path):
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run", method="full", max_steps=2))
    assert rc == 0
    final = of(run, "finished")[0]
    assert final["model_dir"] == str(run.adapter)
    assert (run.adapter / "model.safetensors").is_file()
    assert not (run.adapter / "adapter_config.json").exists()


def test_dora_on_named_modules(tiny_model, data, tmp_path):
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        use_dora=True,
        lora_target_modules=["q_proj", "v_proj"],
        max_steps=2,
        lora_r=4,
        lora_alpha=8,
    )
    rc, run = train(spec)
    assert rc == 0
    cfg = json.loads((run.adapter / "adapter_config.json").read_text())
    assert cfg["use_dora"] is True and sorted(cfg["target_modules"]) == ["q_proj", "v_proj"]
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 8


def test_qlora_smoke_on_cpu(tiny_model, data, tmp_path):
    """nf4 + double quant through bitsandbytes; paged 8-bit AdamW needs CUDA, so the CPU
    smoke path trains with AdamW (said in the spec's optim field help)."""
    from tuitune.runner.build import optimizer_name, quantization_config

    spec = make_spec(tiny_model, data, tmp_path / "run", method="qlora", max_steps=2)
    q = quantization_config(spec)
    assert q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert optimizer_name(spec) == "adamw_torch"  # no CUDA here
    rc, run = train(spec)
    assert rc == 0, of(run, "error")
    assert (run.adapter / "adapter_config.json").is_file()


@pytest.fixture(scope="module")
def sft_adapter(tiny_model, data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sft") / "run"
    rc, run = train(make_spec(tiny_model, data, root, max_steps=3, save_steps=3))
    assert rc == 0
    return run.adapter


def test_dpo_on_top_of_an_sft_adapter_raises_the_heldout_margin(
    tiny_model, data, sft_adapter, tmp_path
):
    """ref_model=None with the SFT adapter loaded: TRL's reference is a frozen copy of it, so
    eval_rewards/margins is the held-out chosen-over-rejected margin gained over SFT."""
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        method="dpo",
        data_format="preference",
        train_file=data["pref_train"],
        eval_file=data["pref_eval"],
        init_adapter=str(sft_adapter),
        max_steps=6,
        save_steps=6,
        eval_steps=6,
        learning_rate=5e-3,
    )
    rc, run = train(spec)
    assert rc == 0, of(run, "error")
    final_eval = of(run, "eval")[-1]
    assert final_eval["eval_rewards/margins"] > 0
    assert "rewards/margins" in of(run, "step")[-1]
    assert not (run.adapter / "ref").exists()  # only the trained adapter is the result
    cfg = json.loads((run.adapter / "adapter_config.json").read_text())
    assert Path(cfg["base_model_name_or_path"]) == Path(tiny_model)


def test_reward_model(tiny_model, data, tmp_path):
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        method="reward",
        data_format="preference",
        train_file=data["pref_train"],
        eval_file=data["pref_eval"],
        max_steps=3,
        eval_steps=3,
    )
    rc, run = train(spec)
    assert rc == 0, of(run, "error")
    assert "eval_accuracy" in of(run, "eval")[-1]
    cfg = json.loads((run.adapter / "adapter_config.json").read_text())
    assert cfg["task_type"] == "SEQ_CLS"


def test_grpo_with_the_task_scorer_as_reward(tiny_model, data, tmp_path):
    spec = make_spec(
        tiny_model,
        data,
        tmp_path / "run",
        method="grpo",
        reward_function="json_extract",
        eval_file="",
        max_steps=2,
        num_generations=2,
        max_completion_length=8,
    )
    rc, run = train(spec)
    assert rc == 0, of(run, "error")
    steps = of(run, "step")
    assert len(steps) == 2 and "rewards/json_extract/mean" in steps[0]
    assert (run.adapter / "adapter_config.json").is_file()


def test_grpo_reward_scores_a_correct_answer_higher(tmp_path):
    from tuitune.runner.rewards import prompt_and_reference, reward_function

    row = {
        "messages": [
            {"role": "user", "content": "Ada is 36"},
            {"role": "assistant", "content": '{"name": "Ada", "age": 36}'},
        ]
    }
    prompt, ref = prompt_and_reference(row)
    assert prompt == row["messages"][:1] and json.loads(ref) == {"name": "Ada", "age": 36}
    fn = reward_function(TrainSpec(method="grpo", reward_function="json_extract"))
    good = [{"role": "assistant", "content": '{"name": "Ada", "age": 36}'}]
    bad = [{"role": "assistant", "content": "Ada, 36 years"}]
    scores = fn(prompts=[prompt, prompt], completions=[good, bad], reference=[ref, ref])
    assert scores[0] == 1.0 and scores[1] < 0.5


def test_sigterm_checkpoints_stops_and_resume_continues(tiny_model, data, tmp_path):
    spec = make_spec(tiny_model, data, tmp_path / "run", max_steps=8, save_steps=100, eval_file="")
    events = Path(spec.output_dir) / "events.jsonl"

    def send_sigterm_after_step_two() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["type"] == "step" and e["step"] >= 2 for e in read_events(events)):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sender = threading.Thread(target=send_sigterm_after_step_two, daemon=True)
    sender.start()
    try:
        rc, run = train(spec, signals=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    sender.join(5)
    assert rc == 0
    stopped = read_events(run.events)[-1]
    assert stopped["type"] == "stopped" and "SIGTERM" in stopped["reason"]
    step = stopped["step"]
    assert 2 <= step < 8 and Path(stopped["checkpoint"]).name == f"checkpoint-{step}"
    assert (Path(stopped["checkpoint"]) / "trainer_state.json").is_file()
    assert not run.adapter.exists()

    rc, run = train(spec, resume=True)
    assert rc == 0
    from tuitune.core.runs.events import RunCurves

    curves = RunCurves().extend(read_events(run.events))
    assert curves.train_steps == list(range(1, 9))  # continues, not restarts
    resumed = [e for e in read_events(run.events) if e["type"] == "start"][-1]
    assert resumed["start_step"] == step and resumed["resumed_from"].endswith(f"-{step}")
    assert curves.final["type"] == "finished"


def test_missing_model_is_one_error_event(data, tmp_path):
    rc, run = train(make_spec(tmp_path / "nope", data, tmp_path / "run"))
    assert rc == 2
    (err,) = of(run, "error")
    assert "model directory does not exist" in err["message"]


def test_answers_beyond_max_length_are_a_clear_error(tiny_model, data, tmp_path):
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run", max_length=16))
    assert rc == 2
    assert "raise max_length" in of(run, "error")[0]["message"]


def test_disk_full_becomes_an_error_event(tiny_model, data, tmp_path, monkeypatch):
    """The disk is faked at the edge: the write that fails raises ENOSPC as the OS would."""
    from tuitune.runner import train as train_mod

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt"))

    monkeypatch.setattr(train_mod.Child, "_train_with_oom_retry", full)
    rc, run = train(make_spec(tiny_model, data, tmp_path / "run"))
    assert rc == 3
    (err,) = of(run, "error")
    assert err["kind"] == "disk" and err["message"].startswith("disk full")
    assert "resume" in err["fix"]


def test_oom_advice_halves_micro_batch_keeping_effective_batch():
    from tuitune.runner.train import oom_advice

    text = oom_advice(TrainSpec(per_device_train_batch_size=8, gradient_accumulation_steps=2))
    assert "per_device_train_batch_size=4 with gradient_accumulation_steps=4" in text


def test_a_gpu_spec_is_refused_when_torch_has_no_cuda(tiny_model, data, tmp_path):
    """bf16 planned for a GPU, but this torch is a CPU build: one error event, no CPU run."""
    spec = make_spec(tiny_model, data, tmp_path / "run", bf16=True, use_cpu=False)
    rc, run = train(spec)
    assert rc == 2
    (err,) = of(run, "error")
    assert "asks for a GPU (bf16)" in err["message"] and "CPU-only build" in err["message"]
    assert "use_cpu" in err["message"]
    assert not of(run, "step") and not run.adapter.exists()


def test_model_load_kwargs_follow_the_precision_policy(tiny_model, data, tmp_path):
    """What the base loads in: fp32 master weights for full SFT, the 16-bit frozen base for
    LoRA, fp16 compute for QLoRA on a GPU without bf16, fp32 on the CPU."""
    import torch

    from tuitune.core.hardware import precision
    from tuitune.runner.build import common_args, model_load_kwargs

    def kw(cuda: bool, **fields):
        spec = make_spec(tiny_model, data, tmp_path / "run", use_cpu=False, **fields)
        return model_load_kwargs(spec, precision.from_spec(spec, cuda=cuda))

    assert kw(True, method="full", bf16=True)["dtype"] is torch.float32
    assert kw(True, method="full", fp16=True)["dtype"] is torch.float32
    assert kw(True, method="lora", bf16=True)["dtype"] is torch.bfloat16
    assert kw(True, method="lora", fp16=True)["dtype"] is torch.float16
    t4 = kw(True, method="qlora", fp16=True)
    assert t4["dtype"] is torch.float16
    assert t4["quantization_config"].bnb_4bit_compute_dtype is torch.float16
    h100 = kw(True, method="qlora", bf16=True)
    assert h100["quantization_config"].bnb_4bit_compute_dtype is torch.bfloat16
    cpu = kw(False, method="qlora", bf16=True)
    assert cpu["dtype"] is torch.float32
    assert cpu["quantization_config"].bnb_4bit_compute_dtype is torch.float32
    # on this CPU the training arguments carry no half precision whatever the spec says
    spec = make_spec(tiny_model, data, tmp_path / "run", method="full")
    args = common_args(spec, RunDir(tmp_path / "run"), has_eval=False)
    assert args["bf16"] is False and args["fp16"] is False


def test_fp16_policy_casts_trainable_tensors_back_to_fp32(tiny_model):
    """TRL casts a 4-bit model's adapters to bf16; under fp16 mixed precision they return to
    fp32 (GradScaler refuses 16-bit gradients); the frozen base keeps its dtype."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuitune.core.hardware import precision
    from tuitune.runner.build import apply_trainable_dtype

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float16)
    model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16)
    n = sum(1 for p in model.parameters() if p.requires_grad)
    assert apply_trainable_dtype(model, precision.for_compute("qlora", "bf16")) == 0
    assert apply_trainable_dtype(model, precision.for_compute("qlora", "fp16")) == n
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert all(p.dtype == torch.float16 for p in model.parameters() if not p.requires_grad)
