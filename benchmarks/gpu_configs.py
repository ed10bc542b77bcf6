"""What ``benchmarks/gpu_proof.py`` measures: the memory rows, the random pool, the speed
cases, the QLoRA end-to-end run and the forced OOM, each as plain data.

Architectures are the published configs bundled in ``tuitune.core.models.catalog`` (the same
numbers the estimator reads), so a row names the model family a user would pick. For the CPU
dry run each architecture has a tiny stand-in of the same ``model_type`` (same code path in
transformers, PEFT and TRL: tied or untied embeddings, q/k/v biases, Gemma-2's extra norms and
soft-capping), built in a second.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# Short names -> catalog entries (tuitune.core.models.catalog.find accepts these).
ARCHS = {
    "SmolLM2-135M": "SmolLM2-135M-Instruct",
    "SmolLM2-360M": "SmolLM2-360M-Instruct",
    "Qwen2.5-0.5B": "Qwen2.5-0.5B-Instruct",
    "Qwen2.5-1.5B": "Qwen2.5-1.5B-Instruct",
    "Qwen2.5-7B": "Qwen2.5-7B-Instruct",
    "Llama-3.2-1B": "Llama-3.2-1B-Instruct",
    "Llama-3.2-3B": "Llama-3.2-3B-Instruct",
    "Llama-3.1-8B": "Llama-3.1-8B-Instruct",
    "Gemma-2-2B": "gemma-2-2b-it",
    "Mistral-7B": "Mistral-7B-Instruct-v0.3",
}

METHODS = ("full", "lora", "dora", "qlora", "dpo", "grpo")


def arch_config(arch: str) -> dict[str, Any]:
    """The published config of ``arch`` (a copy), from the bundled catalogue."""
    from tuitune.core.models import catalog as model_catalog

    entry = model_catalog.find(ARCHS[arch])
    if entry is None:
        raise KeyError(f"{arch} ({ARCHS[arch]}) is not in tuitune.core.models.catalog")
    return dict(entry.config)


def tiny_config(arch: str) -> dict[str, Any]:
    """A tiny stand-in of the same architecture family (same model_type and flags)."""
    cfg = arch_config(arch)
    small = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
    )
    if "head_dim" in cfg:
        small["head_dim"] = 16
    return {**cfg, **small}


@dataclass(frozen=True)
class MemoryRow:
    """One memory configuration: trained a few steps through ``tuitune replay``."""

    id: str
    arch: str
    method: str  # full | lora | dora | qlora | dpo | grpo
    seq: int
    micro: int
    ckpt: bool
    pack: bool
    lora_r: int = 16
    lora_dropout: float = 0.0
    steps: int = 3
    random: bool = False

    @property
    def label(self) -> str:
        return (
            f"{self.arch} {self.method} seq {self.seq} mb {self.micro} "
            f"ckpt {'on' if self.ckpt else 'off'} pack {'on' if self.pack else 'off'}"
        )

    def spec(self) -> dict[str, Any]:
        """The session's spec: every memory-relevant field set, so it is the user's choice
        and the plan keeps it (the plan's own levers stay free: attention, Liger)."""
        method = {"dora": "lora"}.get(self.method, self.method)
        qlora = self.method == "qlora"
        spec: dict[str, Any] = dict(
            schema_version=1,
            method=method,
            seed=42,
            learning_rate=1e-5 if method == "full" else 1e-4,
            max_steps=self.steps,
            num_train_epochs=1.0,
            per_device_train_batch_size=self.micro,
            gradient_accumulation_steps=1,
            warmup_ratio=0.0,
            max_length=self.seq,
            gradient_checkpointing=self.ckpt,
            packing=self.pack,
            bf16=True,
            optim="paged_adamw_8bit" if qlora else "adamw_torch_fused",
            lora_r=self.lora_r,
            lora_alpha=2 * self.lora_r,
            lora_dropout=self.lora_dropout,
            use_dora=self.method == "dora",
            load_in_4bit=qlora,
            logging_steps=1,
            eval_steps=0,
            save_steps=self.steps,
            save_total_limit=1,
        )
        if method == "grpo":
            spec.update(
                reward_function="exact_match",
                num_generations=4,
                max_completion_length=self.seq // 2,
                learning_rate=1e-6,
            )
        if method == "dpo":
            spec.update(learning_rate=5e-7)
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The fixed rows: every method, 0.1B-8B, seq 512-4096, micro-batch 1-16, checkpointing and
# packing on and off. Rows r03/r06/r08/r09/r13 repeat GPU.md's plain-TRL grid (a3/a5/a7/b1/b6)
# so tuitune's runner can be set beside plain TRL.
FIXED = (
    MemoryRow("r01", "SmolLM2-135M", "full", 512, 8, False, False),
    MemoryRow("r02", "SmolLM2-135M", "lora", 1024, 16, True, True),
    MemoryRow("r03", "Qwen2.5-0.5B", "lora", 2048, 4, True, False, lora_r=8),
    MemoryRow("r04", "Qwen2.5-0.5B", "lora", 1024, 8, False, True, lora_r=64),
    MemoryRow("r05", "Qwen2.5-0.5B", "dora", 1024, 4, True, False),
    MemoryRow("r06", "Qwen2.5-1.5B", "full", 1024, 4, True, False),
    MemoryRow("r07", "Llama-3.2-1B", "lora", 4096, 2, True, True, lora_dropout=0.05),
    MemoryRow("r08", "Llama-3.2-1B", "full", 512, 8, False, False),
    MemoryRow("r09", "Qwen2.5-1.5B", "qlora", 2048, 4, True, False),
    MemoryRow("r10", "Gemma-2-2B", "lora", 1024, 4, True, False),
    MemoryRow("r11", "Qwen2.5-0.5B", "dpo", 1024, 4, True, False),
    MemoryRow("r12", "SmolLM2-360M", "grpo", 512, 4, True, False),
    MemoryRow("r13", "Llama-3.1-8B", "lora", 2048, 2, True, False),
    MemoryRow("r14", "Llama-3.1-8B", "qlora", 1024, 4, True, True),
    MemoryRow("r15", "Mistral-7B", "qlora", 2048, 4, True, False),
    MemoryRow("r16", "Qwen2.5-0.5B", "lora", 4096, 1, False, False, lora_dropout=0.05),
)

# The random pool: small and mid architectures (so a drawn row stays inside the time budget)
# crossed with every SFT method and the grid's ranges. Drawn at run time with a printed seed.
POOL_ARCHS = ("SmolLM2-135M", "SmolLM2-360M", "Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-1.5B")
POOL_METHODS = ("full", "lora", "dora", "qlora")
POOL_SEQ = (512, 1024, 2048, 4096)
POOL_MICRO = (1, 2, 4, 8, 16)
# Token budget of one micro-batch in a drawn row (keeps activations and step time bounded).
POOL_MAX_TOKENS = 16384
POOL_MAX_TOKENS_NO_CKPT = 8192


def draw_random(seed: int, n: int = 4) -> list[MemoryRow]:
    """``n`` distinct random configurations from the pool, reproducible from ``seed``."""
    rng = random.Random(seed)
    rows: list[MemoryRow] = []
    seen: set[tuple[Any, ...]] = {(r.arch, r.method, r.seq, r.micro, r.ckpt, r.pack) for r in FIXED}
    while len(rows) < n:
        arch = rng.choice(POOL_ARCHS)
        method = rng.choice(POOL_METHODS)
        seq = rng.choice(POOL_SEQ)
        micro = rng.choice(POOL_MICRO)
        ckpt = rng.random() < 0.5
        pack = rng.random() < 0.5
        limit = POOL_MAX_TOKENS if ckpt else POOL_MAX_TOKENS_NO_CKPT
        if seq * micro > limit or (arch == "Qwen2.5-1.5B" and method == "full" and not ckpt):
            continue
        key = (arch, method, seq, micro, ckpt, pack)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            MemoryRow(
                f"x{len(rows) + 1:02d}",
                arch,
                method,
                seq,
                micro,
                ckpt,
                pack,
                lora_r=rng.choice((8, 16, 32, 64)),
                lora_dropout=rng.choice((0.0, 0.05)),
                random=True,
            )
        )
    return rows


@dataclass(frozen=True)
class SpeedCase:
    """One case of the speed goal: plain TRL against ``tuitune replay`` with its plan."""

    name: str
    arch: str
    method: str  # lora | full | qlora
    batch: int  # the baseline's examples per optimizer step
    min_len: int
    max_len: int
    examples: int
    eval_examples: int
    lr: float
    optim: str
    goal: float  # the speed goal's ratio over plain TRL, at no more memory
    repeats: int = 1  # interleaved repetitions of both arms (a quiet GPU needs one)
    cpu: bool = False  # a tiny CPU case (throughput.py --cpu)
    eval: bool = True  # eval loss of both arms (a 7B model load each: left out on the GPU run)


SPEED = (
    SpeedCase("qwen05-lora", "Qwen2.5-0.5B", "lora", 8, 64, 1024, 256, 32, 2e-4,
              "adamw_torch_fused", 4.0),
    SpeedCase("llama1b-full", "Llama-3.2-1B", "full", 8, 64, 1024, 256, 32, 1e-5,
              "adamw_torch_fused", 2.0),
    SpeedCase("qwen7b-qlora", "Qwen2.5-7B", "qlora", 4, 64, 1024, 80, 16, 2e-4,
              "paged_adamw_8bit", 3.0, eval=False),
)  # fmt: skip


@dataclass(frozen=True)
class QloraE2E:
    """QLoRA end to end on a small model: train, evaluate (4-bit base), chat, export merged."""

    arch: str = "Qwen2.5-1.5B"
    seq: int = 512
    micro: int = 8
    steps: int = 10
    train_rows: int = 96
    eval_rows: int = 8
    chat_message: str = "abcdeFGHIJ"
    chat_tokens: int = 16

    def spec(self) -> dict[str, Any]:
        row = MemoryRow("e2e", self.arch, "qlora", self.seq, self.micro, True, False)
        return {**row.spec(), "max_steps": self.steps, "save_steps": self.steps // 2}


@dataclass(frozen=True)
class OomCase:
    """A plan forced over the GPU's capacity, mid-run.

    Most rows are short; one row is ``long_len`` tokens and is placed where the seeded sampler
    serves it at ``oom_step`` (after the first checkpoint at ``save_steps``). Unpacked, its
    micro-batch pads to ``long_len`` tokens: at ``micro`` rows, without checkpointing, that
    does not fit, so the run goes out of memory there; with ``auto_oom_retry`` it must continue
    from the checkpoint with a smaller micro-batch and the same effective batch.
    """

    arch: str = "Qwen2.5-0.5B"
    method: str = "full"
    micro: int = 64
    accum: int = 1
    short_len: tuple[int, int] = (48, 96)
    long_len: int = 4096
    steps: int = 8
    save_steps: int = 2
    oom_step: int = 5
    seed: int = 42

    @property
    def rows(self) -> int:
        return self.micro * self.accum * self.steps

    def spec(self) -> dict[str, Any]:
        row = MemoryRow("oom", self.arch, self.method, self.long_len, self.micro, False, False)
        return {
            **row.spec(),
            "max_steps": -1,
            "num_train_epochs": 1.0,
            "gradient_accumulation_steps": self.accum,
            "save_steps": self.save_steps,
            "save_total_limit": 3,
            "auto_oom_retry": True,
        }

    def scaled(self, **changes: Any) -> OomCase:
        return replace(self, **changes)


@dataclass(frozen=True)
class Budget:
    """Wall-clock limits (seconds) the GPU invocations hold themselves to."""

    memory_part: float = 285.0
    speed_part: float = 285.0
    row_timeout: float = 150.0
    extras: dict[str, float] = field(default_factory=lambda: {"oom": 90.0, "qlora": 120.0})
