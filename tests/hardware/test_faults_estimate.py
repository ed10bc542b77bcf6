"""LoRA optimizer states with plain AdamW: the runner's optimizer really holds them after a
step, and the estimator counts exactly those bytes (issue 19: setting them to zero was caught
only through the paged-optimizer path)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.core.hardware.estimate import TrainSetup, estimate, load_shape


@pytest.mark.parametrize("optim", ["adamw_torch", "adamw_torch_fused"])
@pytest.mark.parametrize(("r", "targets"), [(16, ("all-linear",)), (8, ("q_proj", "v_proj"))])
def test_lora_adamw_states_are_two_fp32_copies_of_the_adapter(optim, r, targets) -> None:
    shape = load_shape("Qwen2.5-7B")
    for dtype in ("bf16", "fp32"):
        setup = TrainSetup(method="lora", lora_r=r, lora_targets=targets, optim=optim, dtype=dtype)
        est = estimate(shape, setup)
        n = shape.lora_params(r, targets)
        assert est.trainable_params == n
        # PEFT keeps adapters in fp32 on a bf16 base; AdamW keeps exp_avg and exp_avg_sq alike
        # (foreach adamw_torch may add a step temporary when the step is the peak)
        if optim == "adamw_torch_fused":
            assert est.components["optimizer_states"] == 2 * 4 * n
        else:
            assert est.components["optimizer_states"] >= 2 * 4 * n
        assert est.components["trainable_params"] == 4 * n
        assert est.outside_allocator == 0


def test_lora_with_8bit_and_sgd_states() -> None:
    shape = load_shape("Qwen2.5-7B")
    n = shape.lora_params(16, ("all-linear",))
    sgd = estimate(shape, TrainSetup(method="lora", optim="sgd"))
    assert sgd.components["optimizer_states"] == 0
    eight = estimate(shape, TrainSetup(method="lora", optim="adamw_8bit"))
    assert 0 < eight.components["optimizer_states"] < 2 * 4 * n / 3
    paged = estimate(shape, TrainSetup(method="lora", optim="paged_adamw_8bit"))
    assert paged.components["optimizer_states"] == 0
    assert paged.outside_allocator == eight.components["optimizer_states"]


def test_runner_lora_adamw_holds_the_states_the_estimator_counts(
    tiny_model: Path,
    data,  # noqa: F811
    tmp_path: Path,
    one_thread,
) -> None:
    import torch

    spec = make_spec(tiny_model, data, tmp_path / "run", max_steps=3, save_steps=3, eval_file="")
    rc, run = train(spec)
    assert rc == 0
    saved = torch.load(
        run.checkpoints / "checkpoint-3" / "optimizer.pt", map_location="cpu", weights_only=True
    )
    states = saved["state"]
    # LoRA's B starts at zero and warmup makes step 1's learning rate zero, so A's gradient
    # first moves at step 3: every state is non-zero by then.
    assert states, "the optimizer holds no state after three steps"
    nbytes = 0
    for st in states.values():
        for key in ("exp_avg", "exp_avg_sq"):
            t = st[key]
            assert t.dtype == torch.float32 and bool(t.abs().sum() > 0), key
            nbytes += t.numel() * t.element_size()
    setup = TrainSetup(
        method="lora",
        lora_r=spec.lora_r,
        lora_targets=tuple(spec.lora_target_modules),
        optim="adamw_torch_fused",  # the same two states; no step temporary in the count
    )
    est = estimate(load_shape(tiny_model), setup)
    assert nbytes == est.components["optimizer_states"]


SETUPS = [
    TrainSetup(method="lora"),
    TrainSetup(method="lora", dtype="fp32", grad_ckpt=False, micro_batch=4),
    TrainSetup(method="qlora", optim="paged_adamw_8bit"),
    TrainSetup(method="full", optim="adamw_torch"),
    TrainSetup(method="full", objective="dpo", num_gpus=4, fsdp=True),
    TrainSetup(method="lora", objective="dpo", num_gpus=2),
]


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: f"{s.label}-{s.dtype}-{s.num_gpus}")
def test_totals_add_up(setup: TrainSetup) -> None:
    from tuitune.core.hardware.estimate import ALLOCATOR_CONSTANT, CUDA_CONTEXT_BYTES

    est = estimate(load_shape("Qwen2.5-7B"), setup)
    assert sum(est.components.values()) == est.peak_reserved
    assert est.peak_allocated == est.peak_reserved - est.components["allocator_overhead"]
    assert est.components["allocator_overhead"] >= ALLOCATOR_CONSTANT
    assert est.cuda_context == CUDA_CONTEXT_BYTES
    assert est.nvidia_smi_used == est.peak_reserved + est.cuda_context + est.outside_allocator
    assert est.peak_phase in ("backward start", "backward", "optimizer step", "loading")
    assert est.fits(int(est.peak_reserved * 1.1) + 1) and not est.fits(est.peak_reserved)
    assert est.fits(est.peak_reserved, margin=0.0)


def test_sharding_and_replicas_per_gpu() -> None:
    shape = load_shape("Llama-3.1-8B")
    one = estimate(shape, TrainSetup(method="full"))
    fsdp = estimate(shape, TrainSetup(method="full", num_gpus=4, fsdp=True))
    ddp = estimate(shape, TrainSetup(method="full", num_gpus=4))
    assert fsdp.components["weights"] == one.components["weights"] // 4
    assert ddp.components["weights"] == one.components["weights"]
    assert any("4 GPUs, FSDP shards" in n for n in fsdp.notes)
    assert any("4 GPUs, data parallel" in n for n in ddp.notes)
    assert not any("GPUs" in n for n in one.notes)


def test_full_dpo_keeps_a_reference_copy_and_lora_dpo_none() -> None:
    shape = load_shape("Qwen2.5-7B")
    full = estimate(shape, TrainSetup(method="full", objective="dpo"))
    assert full.components["reference_model"] == full.components["weights"] > 0
    assert any("frozen copy" in n for n in full.notes)
    lora = estimate(shape, TrainSetup(method="lora", objective="dpo"))
    assert lora.components["reference_model"] == 0
    assert any("adapter disabled" in n for n in lora.notes)
    sft = estimate(shape, TrainSetup(method="lora"))
    assert lora.peak_reserved > sft.peak_reserved  # chosen and rejected: twice the tokens


def test_parameter_counts_and_notes_by_method() -> None:
    shape = load_shape("Qwen2.5-7B")
    n = shape.param_count()
    lora = estimate(shape, TrainSetup(method="lora"))
    assert lora.total_params == n + lora.trainable_params and lora.trainable_params < n / 50
    assert any("PEFT upcasts LoRA weights" in x for x in lora.notes)
    assert not any(
        "PEFT upcasts LoRA weights" in x for x in estimate(shape, TrainSetup(dtype="fp32")).notes
    )
    full = estimate(shape, TrainSetup(method="full"))
    assert full.total_params == full.trainable_params == n
    assert full.components["trainable_params"] == 0  # the weights themselves train
    q = estimate(shape, TrainSetup(method="qlora", optim="paged_adamw_8bit"))
    assert any("QLoRA keeps embeddings" in x for x in q.notes)
    assert any("paged optimizer states" in x for x in q.notes) and q.outside_allocator > 0
    # nf4 weights: about half a byte per quantized parameter plus bf16 embeddings
    assert n * 0.5 < q.components["weights"] < lora.components["weights"] / 2


def test_estimate_model_and_format_bytes(tiny_model: Path) -> None:
    from tuitune.core.hardware.estimate import GiB, MiB, estimate_model, format_bytes

    setup = TrainSetup(method="lora", lora_r=8)
    assert estimate_model(tiny_model, setup) == estimate(load_shape(tiny_model), setup)
    assert format_bytes(3 * GiB) == "3.00 GiB" and format_bytes(1.5 * GiB) == "1.50 GiB"
    assert format_bytes(GiB) == "1.00 GiB" and format_bytes(512 * MiB) == "512 MiB"
    assert format_bytes(-2 * GiB) == "-2.00 GiB"


def _bnb8(sizes: list[int]) -> int:
    """bitsandbytes 8-bit AdamW: two uint8 states and an fp32 absmax per 256 values per
    tensor; tensors under 4096 values keep two fp32 states."""
    return sum(8 * s if s < 4096 else 2 * s + 8 * math.ceil(s / 256) for s in sizes)


def test_8bit_states_are_counted_tensor_by_tensor() -> None:
    shape = load_shape("Qwen2.5-7B")
    r = 16
    lora_sizes = [
        s for lin in shape.lora_targets(("all-linear",)) for s in (r * lin.in_features, r * lin.out_features)
    ] * shape.num_layers  # fmt: skip
    lora = estimate(shape, TrainSetup(method="lora", lora_r=r, optim="adamw_8bit"))
    assert lora.components["optimizer_states"] == _bnb8(lora_sizes)
    per_layer = [lin.in_features * lin.out_features for lin in shape.linears()]
    per_layer += [lin.out_features for lin in shape.linears() if lin.bias]
    per_layer += [shape.hidden_size] * shape.norms_per_layer
    full_sizes = per_layer * shape.num_layers + [shape.embedding_params(), shape.hidden_size]
    full_sizes += [shape.lm_head_params()] if shape.lm_head_params() else []
    full = estimate(shape, TrainSetup(method="full", optim="paged_adamw_8bit"))
    assert full.outside_allocator == _bnb8(full_sizes)


def test_dora_adds_its_magnitude_vectors() -> None:
    shape = load_shape("Qwen2.5-7B")
    plain = estimate(shape, TrainSetup(method="lora"))
    dora = estimate(shape, TrainSetup(method="lora", use_dora=True))
    extra = sum(lin.out_features for lin in shape.lora_targets(("all-linear",))) * shape.num_layers
    assert dora.trainable_params == plain.trainable_params + extra
    assert dora.trainable_params == shape.lora_params(16, ("all-linear",), dora=True)


def test_nf4_weights_half_a_byte_plus_quantization_constants() -> None:
    shape = load_shape("Qwen2.5-7B")
    q = estimate(shape, TrainSetup(method="qlora", optim="paged_adamw_8bit"))
    lin = shape.num_layers * sum(x.in_features * x.out_features for x in shape.linears())
    bias = shape.num_layers * sum(x.out_features for x in shape.linears() if x.bias)
    blocks = math.ceil(lin / 64)  # one 8-bit absmax per 64 weights, fp32 per 256 of those
    nf4 = lin // 2 + blocks + 4 * math.ceil(blocks / 256)
    assert q.components["weights"] == nf4 + (shape.param_count() - lin) * 2
    assert bias > 0  # Qwen's q/k/v biases stay in bf16 with the embeddings and norms


@pytest.mark.parametrize("gpus", [3, 7])
def test_sharded_figures_are_whole_bytes(gpus: int) -> None:
    est = estimate(load_shape("Qwen2.5-7B"), TrainSetup(method="full", num_gpus=gpus, fsdp=True))
    for k in ("weights", "gradients", "optimizer_states"):  # the sharded ones
        assert isinstance(est.components[k], int), (k, est.components[k])
    assert isinstance(est.peak_reserved, int) and isinstance(est.outside_allocator, int)


def test_every_estimate_states_its_precision_first() -> None:
    for setup in SETUPS:
        est = estimate(load_shape("Qwen2.5-7B"), setup)
        assert est.notes[0].startswith("precision: "), est.notes
    q = estimate(load_shape("Qwen2.5-7B"), TrainSetup(method="qlora"))
    assert q.notes[0].startswith("precision: ") and any("QLoRA keeps" in n for n in q.notes)
