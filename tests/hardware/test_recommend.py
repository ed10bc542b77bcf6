"""Recommender: never picks what its own estimate says does not fit; the checklist's order."""

from __future__ import annotations

import random

import pytest

from tuitune.core.hardware.estimate import GiB, estimate, load_shape
from tuitune.core.hardware.probe import FakeGpu, FakeNVML, probe
from tuitune.core.hardware.recommend import (
    FITS,
    NO,
    device_capacity,
    largest_fitting,
    needed_bytes,
    recommend,
    spec_overrides,
    what_fits,
)
from tuitune.core.models import catalog as model_catalog
from tuitune.core.spec import TrainSpec

MODELS = [
    "SmolLM2-135M-Instruct",
    "Qwen2.5-0.5B",
    "Qwen2.5-3B",
    "Qwen2.5-7B",
    "gemma-2-9b-it",
    "phi-4",
    "Llama-3.1-8B",
    "Qwen2.5-32B",
    "Llama-3.3-70B-Instruct",
]


def _hw(gib: float, cc=(8, 0), n=1, used=0.4):
    return probe(nvml=FakeNVML([FakeGpu(f"GPU {gib}G", gib, used, cc) for _ in range(n)]))


def test_never_recommends_what_its_estimate_says_does_not_fit(monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    rng = random.Random(7)
    for _ in range(60):
        hw = _hw(
            rng.choice([6, 8, 12, 16, 24, 40, 48, 80, 141]),
            rng.choice([(7, 5), (8, 6), (9, 0)]),
            n=rng.choice([1, 1, 2, 4]),
            used=rng.uniform(0.2, 3.0),
        )
        model = rng.choice(MODELS)
        rec = recommend(
            hw,
            model,
            method=rng.choice([None, "full", "lora", "qlora"]),
            objective=rng.choice(["sft", "dpo"]),
            seq_len=rng.choice([512, 1024, 4096]),
        )
        again = estimate(load_shape(model), rec.setup)
        if rec.fits:
            assert needed_bytes(again) * (1 + rec.margin) <= device_capacity(hw), (model, rec.setup)
        else:
            assert needed_bytes(again) * (1 + rec.margin) > device_capacity(hw)
            assert any("does not fit" in n for n in rec.notes)


def test_overrides_are_trainspec_fields_and_apply() -> None:
    rec = recommend(_hw(24, (8, 9)), "Qwen2.5-7B")
    overrides, reasons = spec_overrides(rec)
    spec = TrainSpec().replace(**overrides)
    assert spec.method in ("lora", "qlora") and spec.bf16 and not spec.fp16
    assert len(reasons) == len(rec.choices) and all(": " in r for r in reasons)


def test_checklist_order_on_a_small_gpu() -> None:
    """8 GB and a 7B model: batch first, then checkpointing, then QLoRA."""
    rec = recommend(_hw(8, (8, 6)), "Qwen2.5-7B", seq_len=1024)
    assert rec.fits and rec.setup.method == "qlora" and rec.setup.grad_ckpt
    fields = [c.field for c in rec.choices]
    assert (
        fields.index("gradient_checkpointing") < fields.index("load_in_4bit")
        or rec.overrides["load_in_4bit"]
    )
    assert rec.overrides["load_in_4bit"] is True


def test_big_gpu_turns_checkpointing_off_for_speed() -> None:
    rec = recommend(_hw(80, (9, 0)), "SmolLM2-135M-Instruct")
    assert (
        rec.fits and rec.setup.grad_ckpt is False and rec.overrides["optim"] == "adamw_torch_fused"
    )


def test_old_gpu_gets_fp16() -> None:
    rec = recommend(_hw(16, (7, 5)), "Qwen2.5-0.5B")
    assert rec.overrides["fp16"] is True and rec.overrides["bf16"] is False


def test_several_gpus_data_parallel_or_fsdp() -> None:
    rec = recommend(_hw(80, n=4), "Qwen2.5-7B", method="lora")
    assert rec.strategy == "ddp" and "accelerate launch" in rec.launcher
    full = recommend(_hw(40, n=8), "Qwen2.5-14B", method="full", allow_method_change=False)
    assert full.strategy == "fsdp" and full.fits and "--use_fsdp" in full.launcher


def test_cpu_recommends_lora_with_an_honest_note() -> None:
    hw = probe(nvml=FakeNVML([]))
    rec = recommend(hw, "SmolLM2-135M-Instruct", method="qlora")
    assert rec.device in ("cpu", "mps") and rec.setup.method == "lora" and rec.setup.dtype == "fp32"
    assert any("slower" in n for n in rec.notes)
    big = recommend(hw, "Qwen2.5-7B")
    assert any("0.5B" in n for n in big.notes)


def test_data_lengths_set_the_sequence_length() -> None:
    rec = recommend(_hw(24), "Qwen2.5-0.5B", token_lengths=[100, 200, 300, 700])
    assert rec.overrides["max_length"] == 704


def test_what_fits_table() -> None:
    rows = what_fits(_hw(24, (8, 9)))
    assert len(rows) == 3 * len(model_catalog.CATALOG)
    cell = {(r.model, r.method): r for r in rows}
    assert cell[("SmolLM2-135M-Instruct", "full")].verdict == FITS
    assert cell[("Llama-3.3-70B-Instruct", "full")].verdict == NO
    assert cell[("Qwen2.5-7B-Instruct", "qlora")].verdict == FITS
    assert cell[("Qwen2.5-7B-Instruct", "qlora")].bytes_needed < 12 * GiB
    best = largest_fitting(_hw(24, (8, 9)), method="qlora")
    assert best is not None and best.params > 14e9
    cpu = what_fits(probe(nvml=FakeNVML([])), methods=("qlora",))
    assert all(r.verdict == NO for r in cpu)


@pytest.mark.parametrize("gib", [6, 12])
def test_too_small_says_so(gib: int) -> None:
    rec = recommend(_hw(gib), "Llama-3.3-70B-Instruct")
    assert not rec.fits and any("largest listed model" in n for n in rec.notes)


@pytest.mark.parametrize("method", ["dpo", "reward", "grpo"])
def test_preference_and_rl_methods_recommend_without_raising(method: str) -> None:
    spec = TrainSpec(method=method, num_generations=6)
    rec = recommend(_hw(24, (8, 9)), "Qwen2.5-0.5B-Instruct", method=method, spec=spec)
    assert rec.overrides["method"] == method and rec.fits
    if method == "grpo":  # whole groups of completions, and the KV cache counted
        assert rec.setup.micro_batch % 6 == 0
        assert rec.estimate.components["generation_kv_cache"] > 0
    else:  # chosen and rejected go through together
        assert rec.setup.objective == "dpo"


def test_sized_with_the_spec_lora_dropout() -> None:
    with_dropout = recommend(_hw(80), "Qwen2.5-7B", method="lora", spec=TrainSpec())
    without = recommend(_hw(80), "Qwen2.5-7B", method="lora")
    assert with_dropout.setup.lora_dropout == 0.05 and without.setup.lora_dropout == 0.0
    # the figure is the estimate of exactly that setup: what the spec trains with
    again = estimate(load_shape("Qwen2.5-7B"), with_dropout.setup)
    assert needed_bytes(again) == needed_bytes(with_dropout.estimate)
    same = estimate(load_shape("Qwen2.5-7B"), with_dropout.setup.with_(lora_dropout=0.0))
    assert needed_bytes(same) < needed_bytes(with_dropout.estimate)  # dropout masks cost


def test_full_on_several_gpus_tries_fsdp_before_lora() -> None:
    rec = recommend(_hw(40, n=4), "Qwen2.5-3B", method="full")
    assert rec.overrides["method"] == "full" and rec.strategy == "fsdp" and rec.fits
    assert "FSDP" in dict((c.field, c.reason) for c in rec.choices)["method"]


def test_long_tail_is_dropped_not_truncated() -> None:
    lengths = [100] * 200 + [5000]
    rec = recommend(_hw(24), "Qwen2.5-0.5B", token_lengths=lengths)
    reason = rec.choices[0].reason
    assert "dropped" in reason and "truncated" not in reason
