"""The memory of a TrainSpec: one mapping from spec to estimator setup, used everywhere.

The plan, the recommender, the recipe, ``tuitune estimate`` and the Configure screen all size
a run through ``spec_setup`` and ``estimate_spec``, so every screen and command shows the same
figure for the same spec (LoRA dropout, rank, targets and GRPO's generations included).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tuitune.core.hardware.estimate import (
    ATTN_IMPLEMENTATIONS,
    OPTIMIZERS,
    MemoryEstimate,
    ModelShape,
    TrainSetup,
    estimate,
)


def split_method(method: str, objective: str = "sft") -> tuple[str, str]:
    """A TrainSpec method -> (estimator method, objective): dpo/reward train a LoRA adapter
    on pairs (objective "dpo": 2x sequences), grpo a LoRA adapter on generated completions."""
    if method in ("dpo", "reward"):
        return "lora", "dpo"
    if method == "grpo":
        return "lora", "sft"
    return method, objective


def grpo_micro_batch(micro: int, num_generations: int) -> int:
    """The micro-batch the runner really uses for GRPO: rounded up to whole groups."""
    g = max(2, num_generations)
    return -(-max(micro, g) // g) * g


def spec_setup(spec: Any, *, num_gpus: int = 1, fsdp: bool = False) -> TrainSetup:
    """The estimator's TrainSetup for ``spec``, exactly as the runner will train it."""
    method, objective = split_method(spec.method)
    if spec.load_in_4bit or spec.method == "qlora":
        method = "qlora" if method != "full" else method
    optim = spec.optim
    if method == "qlora" and optim == "adamw_torch":
        optim = "paged_adamw_8bit"  # what runner.build.optimizer_name does
    if optim not in OPTIMIZERS:
        optim = "adamw_torch"  # sized as plain AdamW (two fp32-sized states)
    attn = spec.attn_implementation or "sdpa"
    if attn not in ATTN_IMPLEMENTATIONS:
        attn = "flash_attention_2" if attn.startswith("flash") else "sdpa"
    dtype = "bf16" if spec.bf16 else "fp16" if spec.fp16 else "fp32"
    if method == "qlora" and dtype == "fp32":
        dtype = "bf16"  # runner.build loads 4-bit bases with a bf16 compute dtype
    seq, micro = spec.max_length, spec.per_device_train_batch_size
    if spec.method == "grpo":
        seq = spec.max_length + spec.max_completion_length
        micro = grpo_micro_batch(micro, spec.num_generations)
    return TrainSetup(
        method=method,
        objective=objective,
        seq_len=seq,
        micro_batch=micro,
        grad_ckpt=spec.gradient_checkpointing,
        lora_r=spec.lora_r,
        lora_targets=tuple(spec.lora_target_modules),
        lora_dropout=spec.lora_dropout,
        use_dora=spec.use_dora,
        optim=optim,
        attn_impl=attn,
        dtype=dtype,
        num_gpus=max(1, num_gpus),
        fsdp=fsdp and num_gpus > 1,
    )


def with_generation(est: MemoryEstimate, shape: ModelShape, sequences: int) -> MemoryEstimate:
    """Add GRPO's generation phase: the KV cache of ``sequences`` sequences of the setup's
    length and the sampling logits, beside the weights, adapters and optimizer states."""
    s = est.setup
    a = 4 if s.dtype == "fp32" else 2
    kv = 2 * shape.num_layers * shape.kv_dim * a * sequences * s.seq_len
    logits = sequences * shape.vocab_size * 4 * 2  # fp32 logits and the softmax of one step
    keep = ("weights", "trainable_params", "optimizer_states", "reference_model", "workspace")
    resident = sum(est.components.get(k, 0) for k in keep)
    components = dict(est.components)
    components["generation_kv_cache"] = kv
    notes = (
        *est.notes,
        f"GRPO generation: KV cache of {sequences} sequences x {s.seq_len} tokens",
    )
    if resident + kv + logits <= est.peak_allocated:
        return dataclasses.replace(est, components=components, notes=notes)
    extra = resident + kv + logits - est.peak_allocated
    reserved = est.peak_reserved + extra
    return dataclasses.replace(
        est,
        components=components,
        peak_phase="generation",
        peak_allocated=est.peak_allocated + extra,
        peak_reserved=reserved,
        nvidia_smi_used=reserved + est.cuda_context + est.outside_allocator,
        notes=notes,
    )


def estimate_spec(
    spec: Any, shape: ModelShape, *, num_gpus: int = 1, fsdp: bool = False
) -> MemoryEstimate:
    """Peak memory per device of ``spec`` on ``shape`` (GRPO's generation counted)."""
    setup = spec_setup(spec, num_gpus=num_gpus, fsdp=fsdp)
    est = estimate(shape, setup)
    if spec.method == "grpo":
        est = with_generation(est, shape, setup.micro_batch)
    return est
