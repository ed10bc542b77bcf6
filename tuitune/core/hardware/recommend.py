"""From the probe and the estimate: a training configuration that fits, with its reasons.

Starts from the fastest sensible setup and, while the estimate says it does not fit with the
safety margin, applies the memory checklist in its order: smaller micro-batch with more
accumulation, gradient checkpointing, QLoRA, shorter sequences, flash attention, bf16, lower
LoRA rank, paged 8-bit AdamW. Every choice records why. A recommendation never claims to fit
when its own estimate says otherwise: ``Recommendation.fits`` is computed from the final
estimate, and the wizard must not launch a configuration that does not fit.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.hardware.estimate import (
    CUDA_CONTEXT_BYTES,
    GiB,
    MemoryEstimate,
    ModelShape,
    TrainSetup,
    estimate,
    load_shape,
)
from tuitune.core.hardware.probe import HardwareInfo
from tuitune.core.hardware.spec_memory import split_method, with_generation
from tuitune.core.models.catalog import CATALOG

DEFAULT_MARGIN = 0.10  # keep 10% of the usable memory free for spikes and other processes
TIGHT = "tight"
FITS = "fits"
NO = "no"
MIN_SEQ = 256
CPU_PRACTICAL_PARAMS = 600e6  # above this, CPU training is too slow to be useful


@dataclass(frozen=True)
class Choice:
    """One decision: the TrainSpec field, the value, and why."""

    field: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Recommendation:
    model: str
    device: str  # cuda | mps | cpu
    strategy: str  # single | ddp | fsdp | cpu | mps
    num_gpus: int
    setup: TrainSetup
    estimate: MemoryEstimate
    capacity_bytes: int  # usable per device (free memory minus the CUDA context)
    margin: float
    fits: bool
    choices: tuple[Choice, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    launcher: str = ""  # how to start several processes, when more than one GPU is used

    @property
    def overrides(self) -> dict[str, Any]:
        """TrainSpec field -> value (the last choice for a field wins)."""
        out: dict[str, Any] = {}
        for c in self.choices:
            out[c.field] = c.value
        return out

    @property
    def reasons(self) -> list[str]:
        return [f"{c.field} = {c.value!r}: {c.reason}" for c in self.choices]

    @property
    def headroom_bytes(self) -> int:
        return self.capacity_bytes - needed_bytes(self.estimate)


def needed_bytes(est: MemoryEstimate) -> int:
    """What the device must hold: PyTorch's peak reserved plus paged optimizer states."""
    return est.peak_reserved + est.outside_allocator


def device_capacity(hw: HardwareInfo) -> int:
    """Usable bytes on the tightest device: free GPU memory minus the CUDA context, or RAM."""
    if hw.gpus:
        return max(0, hw.smallest_gpu_free - CUDA_CONTEXT_BYTES)
    return hw.ram_available_bytes


def verdict(est: MemoryEstimate, capacity: int, margin: float = DEFAULT_MARGIN) -> str:
    need = needed_bytes(est)
    if need * (1 + margin) <= capacity:
        return FITS
    if need <= capacity:
        return TIGHT
    return NO


def _fits(est: MemoryEstimate, capacity: int, margin: float) -> bool:
    return verdict(est, capacity, margin) == FITS


def _flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def _round_seq(n: int) -> int:
    return max(64, int(math.ceil(n / 64.0)) * 64)


# Spec methods the estimator sizes as an SFT-shaped method with another objective: DPO and
# reward modelling push chosen and rejected through the model together (twice the tokens);
# GRPO generates ``num_generations`` completions per prompt, then trains on them.
PREFERENCE_METHODS = ("dpo", "reward", "grpo")


def _memory_setup(
    hw: HardwareInfo,
    method: str,
    objective: str,
    seq: int,
    mb: int,
    *,
    lora_r: int = 16,
    lora_targets: tuple[str, ...] = ("all-linear",),
    lora_dropout: float = 0.0,
    use_dora: bool = False,
) -> TrainSetup:
    lora = dict(
        lora_r=lora_r, lora_targets=lora_targets, lora_dropout=lora_dropout, use_dora=use_dora
    )
    if hw.gpus:
        bf16 = all(g.bf16 for g in hw.gpus)
        return TrainSetup(
            method=method,
            objective=objective,
            seq_len=seq,
            micro_batch=mb,
            grad_ckpt=False,
            optim="adamw_torch_fused",
            dtype="bf16" if bf16 else "fp16",
            **lora,
        )
    return TrainSetup(
        method=method if method != "qlora" else "lora",
        objective=objective,
        seq_len=seq,
        micro_batch=mb,
        grad_ckpt=False,
        optim="adamw_torch",
        dtype="fp32",
        **lora,
    )


def recommend(
    hw: HardwareInfo,
    model: str | ModelShape,
    *,
    method: str | None = None,
    objective: str = "sft",
    seq_len: int | None = None,
    token_lengths: list[int] | None = None,
    effective_batch: int = 16,
    margin: float = DEFAULT_MARGIN,
    allow_method_change: bool = True,
    spec: Any = None,
) -> Recommendation:
    """The configuration to train ``model`` on this machine, with a reason per choice.

    ``token_lengths`` (of the training examples, when known) sets the sequence length to
    the longest example rounded up (capped at the 99th percentile when a few are very long);
    longer rows are dropped by curation's token-length step. ``spec`` (a TrainSpec) supplies
    the values the run trains with that change memory (LoRA rank, targets, dropout, DoRA,
    GRPO's generations), so the recommendation is sized as the spec will run. ``method`` may
    be any TrainSpec method: dpo, reward and grpo are sized as LoRA on pairs or generations.
    """
    shape = model if isinstance(model, ModelShape) else load_shape(model)
    spec_method = method
    if method in PREFERENCE_METHODS:
        method, objective = split_method(method, objective)
    lora_kw: dict[str, Any] = {}
    generations = 0
    if spec is not None:
        lora_kw = dict(
            lora_r=spec.lora_r,
            lora_targets=tuple(spec.lora_target_modules),
            lora_dropout=spec.lora_dropout,
            use_dora=spec.use_dora,
        )
        if spec_method == "grpo":
            generations = max(2, spec.num_generations)
    elif spec_method == "grpo":
        generations = 4
    choices: list[Choice] = []
    notes: list[str] = []
    capacity = device_capacity(hw)
    n_gpus = max(1, len(hw.gpus))
    device = hw.accelerator

    # Sequence length: from the data when known
    if token_lengths:
        ordered = sorted(token_lengths)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        want = _round_seq(ordered[-1] if ordered[-1] <= 1.25 * p99 else p99)
        cut = sum(1 for n in ordered if n > want)
        seq = want
        seq_reason = f"the longest example has {ordered[-1]} tokens" + (
            f"; the {cut} longer than the 99th percentile are dropped by curation" if cut else ""
        )
    else:
        seq = seq_len or 1024
        seq_reason = "the requested length" if seq_len else "a common default without data stats"
    choices.append(Choice("max_length", seq, seq_reason))

    # Method
    if method is None:
        method = "lora"
        method_reason = "LoRA: close to full fine-tuning quality at a fraction of the memory"
        if hw.gpus and shape.param_count() < 1e9:
            probe_full = estimate(
                shape,
                _memory_setup(hw, "full", objective, seq, 1, **lora_kw).with_(grad_ckpt=True),
            )
            if _fits(probe_full, capacity, margin) and capacity > 8 * needed_bytes(probe_full):
                method_reason = (
                    "LoRA even though full fine-tuning would fit: smaller checkpoints, less "
                    "forgetting; pick full for the last bit of quality"
                )
    else:
        method_reason = "as requested"
    if method == "qlora" and not hw.gpus:
        method = "lora"
        method_reason = "QLoRA needs an NVIDIA GPU (bitsandbytes 4-bit kernels); LoRA instead"

    mb = min(8, effective_batch)
    completion = 0
    if generations:  # GRPO: the micro-batch holds whole groups of completions
        mb = generations
        completion = spec.max_completion_length if spec is not None else 128
    setup = _memory_setup(hw, method, objective, seq + completion, mb, **lora_kw)
    if hw.gpus:
        dtype_reason = (
            "bf16: the GPU supports it (compute capability >= 8.0), half the memory of fp32"
            if setup.dtype == "bf16"
            else "fp16 mixed precision: this GPU has no bf16 (compute capability < 8.0)"
        )
    else:
        dtype_reason = "fp32 on CPU/MPS: half precision there is slow or unsupported"
        notes.append(
            "No NVIDIA GPU: training runs on the "
            + ("Apple GPU (MPS)" if hw.mps else "CPU")
            + ". Expect ~100x slower steps than a GPU: fine for the 135M default on a few "
            "hundred examples, impractical above ~0.5B parameters."
        )
        if shape.param_count() > CPU_PRACTICAL_PARAMS:
            notes.append(
                f"{shape.name} has {shape.param_count() / 1e9:.1f}B parameters: on this machine "
                "pick a model under 0.5B (SmolLM2-135M/360M, Qwen2.5-0.5B)"
            )

    def est(s: TrainSetup) -> MemoryEstimate:
        e = estimate(shape, s)
        if generations:
            e = with_generation(e, shape, s.micro_batch)
        return e

    def fits(s: TrainSetup) -> bool:
        return _fits(est(s), capacity, margin)

    # Speed first: no checkpointing if the whole micro-batch fits without it.
    steps: list[Choice] = []
    if fits(setup):
        steps.append(
            Choice("gradient_checkpointing", False, "fits without it, and it costs ~30% speed")
        )
    else:
        # 1. smaller micro-batch, more accumulation
        while setup.micro_batch > 1 and not generations and not fits(setup):
            setup = setup.with_(micro_batch=setup.micro_batch // 2)
        if fits(setup):
            steps.append(
                Choice(
                    "per_device_train_batch_size",
                    setup.micro_batch,
                    "largest micro-batch that fits without checkpointing; accumulation keeps "
                    "the effective batch",
                )
            )
            steps.append(Choice("gradient_checkpointing", False, "fits without it (faster)"))
        else:
            # 2. gradient checkpointing, then the largest micro-batch it allows
            setup = setup.with_(grad_ckpt=True, micro_batch=mb)
            while setup.micro_batch > 1 and not generations and not fits(setup):
                setup = setup.with_(micro_batch=setup.micro_batch // 2)
            steps.append(
                Choice(
                    "gradient_checkpointing",
                    True,
                    "activations do not fit otherwise; recomputing them costs ~30% speed",
                )
            )
            # 3. several GPUs: a requested full fine-tune is sharded (FSDP) before it is
            #    downgraded to LoRA
            if not fits(setup) and setup.method == "full" and n_gpus > 1:
                sharded = setup.with_(num_gpus=n_gpus, fsdp=True)
                if fits(sharded):
                    setup = sharded
                    method_reason = (
                        f"full fine-tuning as requested, sharded with FSDP over {n_gpus} GPUs "
                        "(one GPU cannot hold weights + grads + AdamW states)"
                    )
            # 4. QLoRA (a full fine-tune first becomes LoRA: the step before 4-bit)
            if not fits(setup) and allow_method_change and setup.method == "full":
                setup = setup.with_(method="lora", optim=setup.optim)
                method_reason = (
                    "full fine-tuning does not fit (weights + grads + AdamW states); LoRA"
                )
            if not fits(setup) and allow_method_change and setup.method == "lora" and hw.gpus:
                setup = setup.with_(method="qlora")
                method_reason = "QLoRA: 4-bit base weights, since 16-bit weights do not fit"
            # 4. shorter sequences
            while not fits(setup) and setup.seq_len - completion > MIN_SEQ:
                setup = setup.with_(
                    seq_len=max(MIN_SEQ, (setup.seq_len - completion) // 2) + completion
                )
                steps.append(
                    Choice(
                        "max_length",
                        setup.seq_len - completion,
                        "shorter sequences to fit; longer examples are dropped by curation",
                    )
                )
            # 5. flash attention / 6. bf16: already the memory-lean choices on this hardware
            # 7. lower LoRA rank
            while not fits(setup) and setup.method != "full" and setup.lora_r > 4:
                setup = setup.with_(lora_r=setup.lora_r // 2)
                steps.append(
                    Choice("lora_r", setup.lora_r, "lower rank: fewer adapter weights and states")
                )
            # 8. paged 8-bit AdamW
            if not fits(setup) and hw.gpus and setup.optim != "paged_adamw_8bit":
                setup = setup.with_(optim="paged_adamw_8bit")
                steps.append(
                    Choice(
                        "optim",
                        "paged_adamw_8bit",
                        "8-bit optimizer states, paged out of GPU memory on spikes",
                    )
                )
            if fits(setup) and setup.micro_batch > 1:
                steps.append(
                    Choice(
                        "per_device_train_batch_size",
                        setup.micro_batch,
                        "largest micro-batch that fits with checkpointing",
                    )
                )
    # Several GPUs: data parallel when one GPU holds the setup, FSDP when only shards do
    strategy = "single" if hw.gpus else ("mps" if hw.mps else "cpu")
    launcher = ""
    if n_gpus > 1 and setup.fsdp:
        strategy = "fsdp"
        launcher = f"accelerate launch --num_processes {n_gpus} --use_fsdp"
        notes.append(f"FSDP across {n_gpus} GPUs shards weights, gradients and optimizer states")
    elif n_gpus > 1:
        if fits(setup):
            strategy = "ddp"
            setup = setup.with_(num_gpus=n_gpus)
            launcher = f"accelerate launch --num_processes {n_gpus}"
            notes.append(
                f"data parallel on {n_gpus} GPUs: each holds a full copy; figures are per GPU"
            )
        else:
            sharded = setup.with_(num_gpus=n_gpus, fsdp=True)
            if _fits(est(sharded), capacity, margin):
                setup, strategy = sharded, "fsdp"
                launcher = f"accelerate launch --num_processes {n_gpus} --use_fsdp"
                notes.append(
                    f"FSDP across {n_gpus} GPUs shards weights, gradients and optimizer states"
                )
    # If memory is plentiful, grow the micro-batch towards the effective batch (faster)
    while (
        setup.micro_batch * 2 <= effective_batch
        and setup.micro_batch < 32
        and not generations
        and fits(setup.with_(micro_batch=setup.micro_batch * 2))
        and hw.gpus
    ):
        setup = setup.with_(micro_batch=setup.micro_batch * 2)
    final = est(setup)
    ok = _fits(final, capacity, margin)
    if not ok:
        notes.append(
            f"does not fit: needs {needed_bytes(final) / GiB:.1f} GiB + {margin:.0%} margin, "
            f"{capacity / GiB:.1f} GiB usable; choose a smaller model"
            + (" (or a GPU)" if not hw.gpus else "")
        )
        best = largest_fitting(hw, method="qlora" if hw.gpus else "lora", seq_len=min(seq, 1024))
        if best is not None:
            notes.append(f"the largest listed model that fits here: {best.model} ({best.method})")

    # Assemble the TrainSpec overrides in a stable order
    per_gpu_batches = setup.micro_batch * (setup.num_gpus if strategy in ("ddp", "fsdp") else 1)
    accum = max(1, math.ceil(effective_batch / per_gpu_batches))
    if spec_method not in PREFERENCE_METHODS:
        spec_method = "dpo" if objective == "dpo" else setup.method
    if generations:
        notes.append(
            f"GRPO: micro-batch {setup.micro_batch} holds whole groups of {generations} "
            "completions; generation keeps a KV cache beside the training memory"
        )
    choices.append(Choice("method", spec_method, method_reason))
    choices.append(
        Choice(
            "load_in_4bit",
            setup.method == "qlora",
            "nf4 + double quantization" if setup.method == "qlora" else "16-bit base weights",
        )
    )
    choices.extend(steps)
    choices.append(Choice("max_length", setup.seq_len - completion, "final sequence length"))
    choices.append(
        Choice("per_device_train_batch_size", setup.micro_batch, "micro-batch per device")
    )
    choices.append(
        Choice(
            "gradient_accumulation_steps",
            accum,
            f"effective batch {accum * per_gpu_batches} (~{effective_batch} wanted)",
        )
    )
    choices.append(Choice("gradient_checkpointing", setup.grad_ckpt, "final choice"))
    choices.append(Choice("bf16", setup.dtype == "bf16", dtype_reason))
    choices.append(Choice("fp16", setup.dtype == "fp16", dtype_reason))
    if setup.method != "full":
        choices.append(Choice("lora_r", setup.lora_r, "adapter rank"))
        choices.append(
            Choice("lora_alpha", 2 * setup.lora_r, "alpha = 2 x rank, the usual scaling")
        )
    choices.append(
        Choice(
            "optim",
            setup.optim,
            {
                "adamw_torch_fused": "fused AdamW: fastest on CUDA",
                "adamw_torch": "plain AdamW",
                "paged_adamw_8bit": "8-bit paged states to fit",
            }.get(setup.optim, "optimizer"),
        )
    )
    if hw.gpus:
        flash = _flash_attn_installed() and all(g.flash_attention for g in hw.gpus)
        choices.append(
            Choice(
                "attn_implementation",
                "flash_attention_2" if flash else "sdpa",
                "FlashAttention-2 installed and supported"
                if flash
                else "SDPA: memory-efficient attention built into PyTorch (flash-attn not installed)",
            )
        )
    choices.append(
        Choice("use_cpu", not hw.gpus and not hw.mps, "no GPU" if not hw.gpus else "GPU present")
    )
    return Recommendation(
        model=shape.name,
        device=device,
        strategy=strategy,
        num_gpus=setup.num_gpus,
        setup=setup,
        estimate=final,
        capacity_bytes=capacity,
        margin=margin,
        fits=ok,
        choices=tuple(choices),
        notes=tuple(notes),
        launcher=launcher,
    )


def spec_overrides(rec: Recommendation) -> tuple[dict[str, Any], list[str]]:
    """(TrainSpec field overrides, one reason per choice) for the wizard."""
    return rec.overrides, rec.reasons


@dataclass(frozen=True)
class FitRow:
    """One cell of the "what fits" table."""

    model: str
    family: str
    size: str
    params: int
    method: str
    bytes_needed: int
    verdict: str  # fits | tight | no


def what_fits(
    hw: HardwareInfo,
    *,
    methods: tuple[str, ...] = ("full", "lora", "qlora"),
    family: str | None = None,
    seq_len: int = 1024,
    micro_batch: int = 1,
    margin: float = DEFAULT_MARGIN,
) -> list[FitRow]:
    """Method x catalog model -> bytes and verdict, with checkpointing on (the lean setup).

    Peak memory per device at ``micro_batch`` and ``seq_len``; QLoRA is "no" without a GPU.
    """
    capacity = device_capacity(hw)
    rows: list[FitRow] = []
    for entry in CATALOG:
        if family is not None and entry.family != family:
            continue
        shape = ModelShape.from_config(entry.config, name=entry.name)
        for method in methods:
            base = _memory_setup(hw, method, "sft", seq_len, micro_batch).with_(grad_ckpt=True)
            if method == "qlora" and not hw.gpus:
                rows.append(
                    FitRow(entry.name, entry.family, entry.size, shape.param_count(), method, 0, NO)
                )
                continue
            if method == "qlora":
                base = base.with_(optim="paged_adamw_8bit")
            e = estimate(shape, base)
            v = verdict(e, capacity, margin)
            if not hw.gpus and shape.param_count() > CPU_PRACTICAL_PARAMS and v != NO:
                v = TIGHT  # fits in RAM, but too slow to be worth it
            rows.append(
                FitRow(
                    entry.name,
                    entry.family,
                    entry.size,
                    shape.param_count(),
                    method,
                    needed_bytes(e),
                    v,
                )
            )
    return rows


def largest_fitting(
    hw: HardwareInfo, *, method: str = "lora", family: str | None = None, seq_len: int = 1024
) -> FitRow | None:
    """The largest catalog model that fits with ``method`` (the wizard's suggestion)."""
    rows = [
        r
        for r in what_fits(hw, methods=(method,), family=family, seq_len=seq_len)
        if r.verdict == FITS
    ]
    return max(rows, key=lambda r: r.params, default=None)
