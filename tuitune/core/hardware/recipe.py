"""The speed recipe: which speed levers a run gets on this hardware and this data, each with
the reason the wizard shows.

Plain TRL pads every batch to its longest example and recomputes every activation; on real
chat data that wastes most of a GPU (../shared/GPU.md: Qwen2.5-0.5B LoRA 5.7k real tokens/s
plain, 21k with packing, flex attention and Liger at less memory). The levers, in order:

- packing: TRL's best-fit-decreasing packing (``packing=True``, strategy ``bfd``), which turns
  on TRL's padding-free collator: the micro-batch becomes one row with ``position_ids`` that
  restart at every example, so nothing is padded;
- attention: an implementation that keeps packed examples from attending to each other:
  flash_attention_2 (varlen kernels fed TRL's ``cu_seq_lens``) where installed, flex_attention
  (block-sparse mask built from the position ids) on other CUDA GPUs, sdpa on the CPU
  (transformers builds the block-diagonal causal mask from the position ids; checked in
  tests/data/test_packing.py; flex on a CPU compiles for about a minute before the first step);
- Liger kernels (fused linear cross-entropy, RMSNorm, SwiGLU, RoPE): CUDA and the package only;
- gradient checkpointing: only when the memory estimate says the run does not fit without it;
- micro-batch and accumulation: the same real tokens per optimizer step as the spec asked for,
  in micro-batches as large as the estimate allows (small models are overhead-bound: GPU.md
  measured 1.8x tokens/s from packed batch 8 to 16);
- torch.compile: off until measured to pay on this stack (see ``COMPILE_REASON``).

Every lever comes back as plain data (``Lever``) and as TrainSpec field overrides
(``Recipe.spec_overrides``); the runner maps the fields onto SFTConfig and from_pretrained.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.hardware import estimate as est
from tuitune.core.hardware.spec_memory import spec_setup
from tuitune.core.spec import TrainSpec

GiB = 2**30

SFT_METHODS = ("full", "lora", "qlora")
PACKABLE_FORMATS = ("messages", "prompt_completion", "text")
# Fraction of the device memory the estimate may fill (estimator error plus fragmentation).
MEMORY_MARGIN = 0.10
# Memory the CUDA context takes outside PyTorch's allocator when only the total is known.
CUDA_CONTEXT_BYTES = GiB // 2
# Slowdown of gradient checkpointing (one extra forward): GPU.md measured 1.7x on
# Qwen2.5-0.5B LoRA (12.0k -> 20.6k tokens/s without it) and 1.44x on Qwen2.5-7B QLoRA.
CHECKPOINTING_COST = 1.5
# Per-micro-batch overhead expressed in tokens of compute, times the parameter count: a step
# costs (overhead + tokens) units. Fitted on GPU.md (Qwen2.5-0.5B packed batch 8 -> 16 gave
# 1.82x): about 74k tokens for 0.5B parameters on an H100. On a CPU the overhead is Python's,
# a few hundred tokens of a tiny model.
OVERHEAD_TOKEN_PARAMS_CUDA = 3.7e13
OVERHEAD_TOKEN_PARAMS_CPU = 2e8
# Largest accepted overshoot of the tokens per optimizer step when the micro-batch does not
# divide the rows per step.
STEP_OVERSHOOT = 1.25
# Below this share of padding, packing gains less than it changes (whole packed rows round
# the tokens per optimizer step).
PACKING_MIN_WASTE = 0.10
COMPILE_REASON = (
    "off: not yet measured to pay on this stack (padding-free packing varies the sequence "
    "length every step, so the graph recompiles or goes dynamic; flex attention already "
    "compiles its own kernel). Switch it on in the spec to try"
)


@dataclass(frozen=True)
class Lever:
    """One speed lever: whether it is on, the value it sets and why."""

    name: str
    on: bool
    reason: str
    value: Any = None

    @property
    def setting(self) -> str:
        if self.value is None or isinstance(self.value, bool):
            return "on" if self.on else "off"
        return str(self.value)


@dataclass(frozen=True)
class Recipe:
    """The chosen levers and the TrainSpec fields they set."""

    spec_overrides: dict[str, Any]
    levers: list[Lever]
    notes: list[str] = field(default_factory=list)
    estimated_peak_bytes: int | None = None
    capacity_bytes: int | None = None

    def apply(self, spec: TrainSpec) -> TrainSpec:
        return spec.replace(**self.spec_overrides)

    def lever(self, name: str) -> Lever:
        for lever in self.levers:
            if lever.name == name:
                return lever
        raise KeyError(name)

    def rows(self) -> list[tuple[str, str, str]]:
        """(lever, setting, reason) for a table in the wizard or the CLI."""
        return [(lv.name, lv.setting, lv.reason) for lv in self.levers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_overrides": dict(self.spec_overrides),
            "levers": [
                {"name": lv.name, "on": lv.on, "value": lv.value, "reason": lv.reason}
                for lv in self.levers
            ],
            "notes": list(self.notes),
            "estimated_peak_bytes": self.estimated_peak_bytes,
            "capacity_bytes": self.capacity_bytes,
        }


# --------------------------------------------------------------------------------------
# The device, from whatever the hardware probe hands over
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """The one device a run trains on (per-GPU figures under data parallelism)."""

    kind: str = "cpu"  # cuda | cpu | mps
    name: str = ""
    total_bytes: int = 0
    free_bytes: int = 0
    compute_capability: tuple[int, int] | None = None
    count: int = 1

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def capacity_bytes(self) -> int:
        """Bytes a run may fill: free memory where known, else total less the context."""
        if self.free_bytes:
            return self.free_bytes
        if self.total_bytes and self.cuda:
            return max(0, self.total_bytes - CUDA_CONTEXT_BYTES)
        return self.total_bytes


def _first(obj: Any, names: Sequence[str], default: Any = None) -> Any:
    for n in names:
        value = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if value not in (None, ""):
            return value
    return default


def _capability(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    major, minor = tuple(value)[:2]
    return int(major), int(minor)


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def device_of(hardware: Any, *, use_cpu: bool = False) -> Device:
    """A ``Device`` from the hardware probe's result (duck-typed), a ``Device`` or None.

    Reads ``hardware.gpus[0]`` (total/free bytes, name, compute capability) when there is a
    GPU and ``use_cpu`` is off; otherwise the CPU with its available RAM.
    """
    if isinstance(hardware, Device):
        return hardware if not use_cpu or not hardware.cuda else Device("cpu")
    gpus = list(_first(hardware, ("gpus", "cuda_devices", "devices"), []) or []) if hardware else []
    if gpus and not use_cpu:
        g = gpus[0]
        return Device(
            kind="cuda",
            name=str(_first(g, ("name",), "")),
            total_bytes=int(_first(g, ("total_bytes", "memory_total", "total_memory", "total"), 0)),
            free_bytes=int(_first(g, ("free_bytes", "memory_free", "free_memory", "free"), 0)),
            compute_capability=_capability(
                _first(g, ("compute_capability", "capability", "cc"), None)
            ),
            count=len(gpus),
        )
    ram = 0
    if hardware is not None:
        ram = int(_first(hardware, ("ram_available", "ram_available_bytes", "ram_free"), 0))
        if not ram:
            ram = int(_first(hardware, ("ram_total", "ram_total_bytes", "ram_bytes"), 0))
    mps = bool(_first(hardware, ("mps", "has_mps"), False)) if hardware is not None else False
    return Device(kind="mps" if mps and not use_cpu else "cpu", total_bytes=ram or _mem_available())


# --------------------------------------------------------------------------------------
# Data: how much padding plain batches would carry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthProfile:
    """Token lengths of the training examples, as a weighted list of (length, count)."""

    points: tuple[tuple[float, int], ...]

    @classmethod
    def of(cls, data_stats: Any) -> LengthProfile | None:
        """From a list of lengths, or the data helper's ``DataStats`` (its histogram)."""
        if data_stats is None:
            return None
        if isinstance(data_stats, Sequence) and data_stats and isinstance(data_stats[0], int):
            return cls(tuple((float(n), 1) for n in data_stats))
        hist = _first(data_stats, ("token_histogram",), None)
        if hist:
            pts = tuple(((lo + hi) / 2.0, int(c)) for lo, hi, c in hist if c)
            return cls(pts) if pts else None
        median = _first(data_stats, ("token_median", "mean_tokens"), 0)
        return cls(((float(median), 1),)) if median else None

    def clipped(self, max_length: int) -> LengthProfile:
        return LengthProfile(tuple((min(v, max_length), c) for v, c in self.points))

    @property
    def count(self) -> int:
        return sum(c for _, c in self.points)

    @property
    def mean(self) -> float:
        return sum(v * c for v, c in self.points) / max(1, self.count)

    def expected_max(self, batch: int) -> float:
        """E[longest of ``batch`` random examples]: what plain TRL pads each batch to."""
        pts = sorted(self.points)
        n = self.count
        below, total, prev = 0, 0.0, 0.0
        for v, c in pts:
            below += c
            cdf = (below / n) ** batch
            total += v * (cdf - prev)
            prev = cdf
        return total


# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------

EstimateFn = Callable[[TrainSpec], int]


def default_estimate(spec: TrainSpec) -> int:
    """Peak reserved bytes of ``spec`` by tuitune's estimator (``tuitune.core.hardware.estimate``).

    With packing the micro-batch is exactly ``micro x max_length`` tokens (padding-free
    rows); without it this is the worst case (every batch padded to ``max_length``).
    """
    return est.estimate_model(spec.model, spec_setup(spec)).peak_reserved


def model_params(model: str) -> int | None:
    """Parameter count from the model's config alone (None when it cannot be read)."""
    try:
        return est.load_shape(model).param_count()
    except Exception:  # unknown architecture or no config: the cost model falls back
        return None


# --------------------------------------------------------------------------------------
# Library availability (the edges tests may replace)
# --------------------------------------------------------------------------------------


def liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def flex_attention_available() -> bool:
    """torch >= 2.5 ships torch.nn.attention.flex_attention (checked without importing torch)."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("torch").split(".")[:2])
    except Exception:  # torch missing or an odd version string
        return False
    return (major, minor) >= (2, 5)


def liger_supports(model: str) -> bool:
    """Liger has kernels for this model type (read from config.json, liger's own table)."""
    try:
        cfg = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
        model_type = cfg.get("model_type", "")
    except (OSError, ValueError):
        return True  # unknown: TRL/transformers warn and skip unsupported types
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception:  # an older liger layout: let transformers decide
        return True
    return model_type in MODEL_TYPE_TO_APPLY_LIGER_FN


# --------------------------------------------------------------------------------------
# The choice
# --------------------------------------------------------------------------------------


def _packing_lever(spec: TrainSpec, profile: LengthProfile | None) -> Lever:
    if spec.method not in SFT_METHODS:
        return Lever("packing", False, f"off: TRL packs SFT data only, not {spec.method}")
    if spec.data_format not in PACKABLE_FORMATS:
        return Lever("packing", False, f"off: {spec.data_format} data is not packed")
    batch = max(2, spec.per_device_train_batch_size)
    if profile is None:
        return Lever(
            "packing",
            True,
            "on: examples packed into full rows (best-fit decreasing), padding-free; "
            "no length statistics, so the padding saved is not quantified",
        )
    p = profile.clipped(spec.max_length)
    waste = 1.0 - p.mean / max(1.0, p.expected_max(batch))
    if waste < PACKING_MIN_WASTE:
        return Lever(
            "packing",
            False,
            f"off: random batches of {batch} of this data are only {waste:.0%} padding "
            f"(mean {p.mean:.0f} tokens, padded to ~{p.expected_max(batch):.0f}); packing "
            "would gain little and change the tokens per step by rounding to whole rows",
        )
    return Lever(
        "packing",
        True,
        f"on: random batches of {batch} of this data would be {waste:.0%} padding "
        f"(mean {p.mean:.0f} tokens, padded to ~{p.expected_max(batch):.0f}); packed rows "
        "are filled best-fit decreasing with position ids, so no token is padding",
    )


def _attention_lever(spec: TrainSpec, device: Device, packing: bool) -> Lever:
    half = spec.bf16 or spec.fp16 or spec.method == "qlora" or spec.load_in_4bit
    cc = device.compute_capability
    if device.cuda:
        if flash_attn_available() and half and (cc is None or cc >= (8, 0)):
            return Lever(
                "attn_implementation",
                True,
                "flash_attention_2: installed, and its varlen kernels take TRL's sequence "
                "boundaries, so packed examples never attend to each other",
                "flash_attention_2",
            )
        if packing and flex_attention_available():
            return Lever(
                "attn_implementation",
                True,
                "flex_attention: a block-sparse mask from the position ids keeps packed "
                "examples apart and skips the blocks between them (flash-attn not installed)",
                "flex_attention",
            )
        return Lever(
            "attn_implementation",
            True,
            "sdpa: PyTorch's fused attention (padded batches need no packing-aware kernel)",
            "sdpa",
        )
    why = (
        "sdpa: on the CPU transformers builds a block-diagonal causal mask from the position "
        "ids, so packed examples stay apart (flex attention would compile for a minute first)"
        if packing
        else "sdpa: PyTorch's fused attention, the fastest on a CPU"
    )
    return Lever("attn_implementation", True, why, "sdpa")


def _liger_lever(spec: TrainSpec, device: Device) -> Lever:
    if not device.cuda:
        return Lever("use_liger_kernel", False, "off: Liger's kernels are Triton, CUDA only")
    if spec.method not in SFT_METHODS:
        return Lever("use_liger_kernel", False, f"off: measured for SFT only, not {spec.method}")
    if not liger_available():
        return Lever(
            "use_liger_kernel",
            False,
            "off: liger-kernel is not installed (pip install liger-kernel: fused "
            "cross-entropy, 1.1-2x faster on GPU.md's runs)",
        )
    if not liger_supports(spec.model):
        return Lever("use_liger_kernel", False, "off: Liger has no kernels for this model type")
    return Lever(
        "use_liger_kernel",
        True,
        "on: fused linear cross-entropy never materialises the full logits; fused RMSNorm, "
        "SwiGLU and RoPE (GPU.md: 2.1x on padded Qwen2.5-0.5B LoRA)",
    )


@dataclass(frozen=True)
class _Candidate:
    micro: int
    accum: int
    ckpt: bool
    peak: int
    cost: float


def _cost(real: float, computed: float, ckpt: bool, overhead_tokens: float) -> float:
    """Relative time per real token of one micro-batch of ``real`` real tokens computed as
    ``computed`` tokens (padding included): fixed overhead plus compute, times recompute."""
    factor = CHECKPOINTING_COST if ckpt else 1.0
    return factor * (overhead_tokens + computed) / max(1.0, real)


def _batch_candidates(units_per_step: int) -> list[tuple[int, int]]:
    """(micro, accumulation) pairs that keep the units per optimizer step within bounds."""
    out = []
    for micro in range(1, units_per_step + 1):
        accum = math.ceil(units_per_step / micro)
        if micro * accum <= units_per_step * STEP_OVERSHOOT or micro == 1:
            out.append((micro, accum))
    return out


def choose_recipe(
    spec: TrainSpec,
    hardware: Any,
    data_stats: Any = None,
    estimate_fn: EstimateFn | None = None,
    *,
    memory_budget: int | None = None,
    fixed: Collection[str] = (),
) -> Recipe:
    """The speed levers for ``spec`` on ``hardware`` with data of ``data_stats``.

    ``hardware``: the probe's result (``gpus[0]`` with total/free bytes, name, compute
    capability), a ``Device``, or None for this machine's CPU. ``data_stats``: the data
    helper's ``DataStats`` (token histogram) or a list of token lengths per example.
    ``estimate_fn(spec) -> peak bytes`` defaults to tuitune's estimator. ``memory_budget``
    caps the memory below the device's (a shared GPU, or a benchmark's baseline peak).

    The effective batch is kept in real tokens: with packing, the spec's examples per step
    become packed rows of ``max_length`` tokens carrying the same tokens on average.

    ``fixed`` names the TrainSpec fields the user set: their values are kept and the lever
    says so. With packing on by the recipe, a fixed batch is still the user's examples per
    step, carried in packed rows; with packing set on by the user, the batch counts packed
    rows, as in TRL (so a spec tuitune planned and pinned plans again to itself).
    """
    device = device_of(hardware, use_cpu=spec.use_cpu)
    estimate_fn = estimate_fn or default_estimate
    profile = LengthProfile.of(data_stats)
    notes: list[str] = []

    fixed = set(fixed)
    yours = "as you set it in the session"
    packing = _packing_lever(spec, profile)
    if "packing" in fixed and spec.packing != packing.on:
        packing = Lever("packing", spec.packing, f"{'on' if spec.packing else 'off'}: {yours}")
    attn = _attention_lever(spec, device, packing.on)
    if "attn_implementation" in fixed and spec.attn_implementation:
        attn = Lever("attn_implementation", True, yours, spec.attn_implementation)
    liger = _liger_lever(spec, device)
    if "use_liger_kernel" in fixed and spec.use_liger_kernel != liger.on:
        liger = Lever("use_liger_kernel", spec.use_liger_kernel, yours)
    compile_lever = Lever("torch_compile", False, COMPILE_REASON)
    if "torch_compile" in fixed and spec.torch_compile:
        compile_lever = Lever("torch_compile", True, yours)
    keep_ckpt = "gradient_checkpointing" in fixed
    rows_given = packing.on and "packing" in fixed  # the user's batch already counts rows
    keep_batch = (not packing.on or rows_given) and bool(
        {"per_device_train_batch_size", "gradient_accumulation_steps"} & fixed
    )

    # Units per optimizer step: examples (padded) or packed rows of max_length tokens.
    examples_per_step = spec.per_device_train_batch_size * spec.gradient_accumulation_steps
    units = examples_per_step
    if rows_given:
        notes.append(f"packing set in the session: {units} packed rows per optimizer step")
    elif packing.on and profile is not None:
        mean = profile.clipped(spec.max_length).mean
        units = max(1, round(examples_per_step * mean / spec.max_length))
        notes.append(
            f"{examples_per_step} examples per step ~ {examples_per_step * mean:.0f} real "
            f"tokens ~ {units} packed rows of {spec.max_length}"
        )
    elif packing.on:
        units = spec.per_device_train_batch_size * spec.gradient_accumulation_steps
        notes.append("no length statistics: each packed row counts as one example per step")
    clipped = profile.clipped(spec.max_length) if profile is not None else None

    def micro_tokens(micro: int) -> tuple[float, float]:
        """(real, computed) tokens of one micro-batch."""
        if packing.on or clipped is None:
            full = float(micro * spec.max_length)
            return full, full
        return micro * clipped.mean, micro * clipped.expected_max(micro)

    params = model_params(spec.model) if spec.model else None
    per_param = OVERHEAD_TOKEN_PARAMS_CUDA if device.cuda else OVERHEAD_TOKEN_PARAMS_CPU
    overhead = per_param / params if params else (8192.0 if device.cuda else 256.0)

    capacity = device.capacity_bytes
    if memory_budget:
        capacity = min(capacity, memory_budget) if capacity else memory_budget
    base = spec.replace(
        packing=packing.on,
        attn_implementation=attn.value,
        use_liger_kernel=liger.on,
        torch_compile=compile_lever.on,
    )
    candidates: list[_Candidate] = []
    estimate_failed = ""
    pairs = _batch_candidates(units)
    if keep_batch:
        pairs = [(spec.per_device_train_batch_size, spec.gradient_accumulation_steps)]
    for micro, accum in pairs:
        for ckpt in (spec.gradient_checkpointing,) if keep_ckpt else (False, True):
            trial = base.replace(
                per_device_train_batch_size=micro,
                gradient_accumulation_steps=accum,
                gradient_checkpointing=ckpt,
            )
            try:
                peak = int(estimate_fn(trial))
            except Exception as e:  # an architecture the estimator cannot read
                estimate_failed = f"{type(e).__name__}: {e}"
                peak = 0
            cost = _cost(*micro_tokens(micro), ckpt, overhead)
            candidates.append(_Candidate(micro, accum, ckpt, peak, cost))
        if estimate_failed:
            break
    limit = int(capacity / (1.0 + MEMORY_MARGIN)) if capacity else 0
    if estimate_failed or not limit:
        # Without an estimate (or a capacity) keep the spec's memory-relevant choices.
        why = estimate_failed or "the device memory is unknown"
        micro = min(spec.per_device_train_batch_size, units)
        chosen = _Candidate(micro, math.ceil(units / micro), spec.gradient_checkpointing, 0, 0.0)
        notes.append(f"memory not estimated ({why}): micro-batch and checkpointing kept")
    else:
        fitting = [c for c in candidates if c.peak <= limit]
        if fitting:
            chosen = min(fitting, key=lambda c: (c.cost, c.peak))
        else:
            # the leanest setup: least memory, then the smallest micro-batch with checkpointing
            chosen = min(candidates, key=lambda c: (c.peak, c.micro, not c.ckpt, c.cost))
            notes.append(
                f"the leanest setup (micro-batch {chosen.micro}, checkpointing "
                f"{'on' if chosen.ckpt else 'off'}) is estimated at {chosen.peak / GiB:.2f} GiB, "
                f"over the {limit / GiB:.2f} GiB that keeps a {MEMORY_MARGIN:.0%} margin of the "
                f"{capacity / GiB:.2f} GiB available: choose QLoRA, a smaller model or a "
                "shorter max_length"
            )
    unit = "packed rows" if packing.on else "examples"
    where = f"{capacity / GiB:.1f} GiB" if capacity else "unknown memory"
    if estimate_failed or not limit:
        ckpt_reason = "kept as the spec says: " + (estimate_failed or "device memory unknown")
        batch_reason = f"{chosen.micro} {unit} x {chosen.accum} steps (kept; not estimated)"
    else:
        no_ckpt = [c for c in candidates if not c.ckpt and c.micro == chosen.micro]
        est_off = no_ckpt[0].peak if no_ckpt else 0
        if chosen.ckpt:
            ckpt_reason = (
                f"on: without it micro-batch {chosen.micro} is estimated at "
                f"{est_off / GiB:.2f} GiB, over the {where} available (with "
                f"{MEMORY_MARGIN:.0%} margin); with it {chosen.peak / GiB:.2f} GiB"
            )
            faster_off = [c for c in candidates if not c.ckpt and c.peak <= limit]
            if faster_off:
                best_off = min(faster_off, key=lambda c: c.cost)
                ckpt_reason += (
                    f" (a larger micro-batch with checkpointing beats micro-batch "
                    f"{best_off.micro} without it)"
                )
        else:
            ckpt_reason = (
                f"off: micro-batch {chosen.micro} without it is estimated at "
                f"{chosen.peak / GiB:.2f} GiB of the {where} available; recomputing "
                f"activations would cost ~{CHECKPOINTING_COST - 1:.0%} speed"
            )
        batch_reason = (
            f"{chosen.micro} {unit} per micro-batch x {chosen.accum} accumulation = "
            f"{chosen.micro * chosen.accum} {unit} per optimizer step: the largest "
            "micro-batch the estimate fits at the same tokens per step"
        )
    if keep_ckpt:
        ckpt_reason = f"{'on' if chosen.ckpt else 'off'}: {yours} ({ckpt_reason})"
    if keep_batch:
        batch_reason = f"{chosen.micro} x {chosen.accum}: {yours}"
    ckpt_lever = Lever("gradient_checkpointing", chosen.ckpt, ckpt_reason)
    batch_lever = Lever(
        "micro_batch", True, batch_reason, f"{chosen.micro} x {chosen.accum} ({unit})"
    )
    overrides = {
        "packing": packing.on,
        "attn_implementation": attn.value,
        "use_liger_kernel": liger.on,
        "torch_compile": compile_lever.on,
        "gradient_checkpointing": chosen.ckpt,
        "per_device_train_batch_size": chosen.micro,
        "gradient_accumulation_steps": chosen.accum,
    }
    return Recipe(
        spec_overrides=overrides,
        levers=[packing, attn, liger, ckpt_lever, batch_lever, compile_lever],
        notes=notes,
        estimated_peak_bytes=chosen.peak or None,
        capacity_bytes=capacity or None,
    )
