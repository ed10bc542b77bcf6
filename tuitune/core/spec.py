"""The training spec: one frozen, versioned dataclass, serialised to JSON.

The same object is stored in the session file and handed to the training child as
``python -m tuitune.runner SPEC.json``. Field docs live in ``metadata["help"]`` (as TRL's
``ScriptArguments`` do) so the wizard can show a one-line explanation per field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError

SPEC_SCHEMA_VERSION = 1

METHODS = ("full", "lora", "qlora", "dpo", "reward", "grpo")
DATA_FORMATS = ("messages", "prompt_completion", "preference", "text", "unpaired_preference")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass(frozen=True)
class TrainSpec:
    """Everything the training child needs; nothing it must guess."""

    model: str = _f("", "Local directory of the base model (resolved before launch).")
    method: str = _f("lora", "full | lora | qlora | dpo | reward | grpo.")
    train_file: str = _f("", "Curated training data, JSONL in TRL's standard form.")
    eval_file: str = _f("", "Curated validation data, JSONL; empty for none.")
    data_format: str = _f("messages", "Format of train_file: " + " | ".join(DATA_FORMATS) + ".")
    output_dir: str = _f("", "The run directory: checkpoints, events.jsonl, train.log.")
    seed: int = _f(42, "Seed for data order, initialisation and dropout.")
    # Optimisation (seed defaults: lr 2e-4, 2-3 epochs, batch 2 x accumulation 8, cosine).
    learning_rate: float = _f(2e-4, "Peak learning rate; 2e-4 for LoRA, ~1e-5 for full SFT.")
    num_train_epochs: float = _f(3.0, "Passes over the training data.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps; -1 means use epochs.")
    per_device_train_batch_size: int = _f(2, "Examples per micro-batch on each device.")
    gradient_accumulation_steps: int = _f(8, "Micro-batches summed per optimizer step.")
    lr_scheduler_type: str = _f("cosine", "Learning-rate schedule after warmup.")
    warmup_ratio: float = _f(0.05, "Share of steps spent warming up the learning rate.")
    weight_decay: float = _f(0.01, "Decoupled weight decay of AdamW.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    optim: str = _f("adamw_torch", "Optimizer: adamw_torch, adamw_torch_fused, paged_adamw_8bit...")
    max_length: int = _f(1024, "Tokens per example; longer ones are truncated.")
    gradient_checkpointing: bool = _f(True, "Recompute activations to save memory (~30% slower).")
    bf16: bool = _f(False, "Train in bfloat16 (GPUs with compute capability >= 8.0).")
    fp16: bool = _f(False, "Train in float16 mixed precision (older GPUs).")
    completion_only_loss: bool = _f(True, "Mask prompt tokens (-100): train on answers only.")
    # LoRA / QLoRA
    lora_r: int = _f(16, "LoRA rank: capacity of the adapter; 8-64 is usual.")
    lora_alpha: int = _f(32, "LoRA scaling numerator; 2x rank is the usual choice.")
    lora_dropout: float = _f(0.05, "Dropout on the adapter's input.")
    lora_target_modules: list[str] = _f(
        ["all-linear"], "Modules that get adapters: all-linear, or names such as q_proj."
    )
    use_dora: bool = _f(False, "DoRA: weight-decomposed LoRA; slower, sometimes better.")
    load_in_4bit: bool = _f(False, "QLoRA: nf4 weights with double quantization.")
    init_adapter: str = _f("", "Adapter to continue from (DPO on top of an SFT adapter).")
    # Preference / RL
    beta: float = _f(0.1, "DPO temperature: how far the policy may move from the reference.")
    reward_function: str = _f("", "GRPO: name of the programmatic reward (a task scorer).")
    num_generations: int = _f(4, "GRPO: completions sampled per prompt.")
    max_completion_length: int = _f(128, "GRPO: tokens generated per completion.")
    # Logging, evaluation and checkpoints
    logging_steps: int = _f(1, "Optimizer steps between train-loss events.")
    eval_steps: int = _f(0, "Steps between validation-loss events; 0 picks ~10 per run.")
    save_steps: int = _f(0, "Steps between checkpoints; 0 picks ~5 per run.")
    save_total_limit: int = _f(2, "Checkpoints kept on disk.")
    # Speed levers
    packing: bool = _f(False, "Pack several examples per row (best-fit decreasing).")
    attn_implementation: str = _f(
        "", "sdpa, eager, flex_attention or flash_attention_2; empty = auto."
    )
    use_liger_kernel: bool = _f(False, "Liger's fused Triton kernels (GPU only).")
    torch_compile: bool = _f(False, "Compile the model with torch.compile.")
    # Robustness and integrations
    auto_oom_retry: bool = _f(
        False, "On CUDA OOM, retry with half the micro-batch, 2x accumulation."
    )
    report_to: list[str] = _f([], "Trackers for TRL's report_to (tensorboard, trackio, wandb).")
    trust_remote_code: bool = _f(False, "Run code shipped with the model; off unless you trust it.")
    use_cpu: bool = _f(False, "Force the CPU even where a GPU exists.")
    schema_version: int = _f(SPEC_SCHEMA_VERSION, "Version of this format.")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise TuituneError(
                f"unknown method {self.method!r}", fix=f"use one of {', '.join(METHODS)}"
            )
        if self.data_format not in DATA_FORMATS:
            raise TuituneError(
                f"unknown data_format {self.data_format!r}",
                fix=f"use one of {', '.join(DATA_FORMATS)}",
            )

    @property
    def uses_peft(self) -> bool:
        return self.method != "full"

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def replace(self, **changes: Any) -> TrainSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | Path = "spec") -> TrainSpec:
        return from_dict(cls, data, source=source, schema_version=SPEC_SCHEMA_VERSION)

    @classmethod
    def load(cls, path: str | Path) -> TrainSpec:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TuituneError("spec file not found", path=path) from None
        except json.JSONDecodeError as e:
            raise TuituneError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
        return cls.from_dict(data, source=path)

    @staticmethod
    def help(name: str) -> str:
        for f in dataclasses.fields(TrainSpec):
            if f.name == name:
                return f.metadata.get("help", "")
        raise KeyError(name)


def _check_type(value: Any, tp: Any) -> bool:
    """Loose runtime check of JSON values against simple annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(tp))
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_check_type(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    return isinstance(value, tp) if isinstance(tp, type) else True


def from_dict(
    cls: type, data: Any, *, source: str | Path, schema_version: int | None, prefix: str = ""
) -> Any:
    """Build dataclass ``cls`` from JSON data, with one-line errors naming file and field.

    Unknown keys, wrong types and a newer or unknown ``schema_version`` are refused; missing
    optional fields take their defaults (older files stay readable).
    """
    if not isinstance(data, dict):
        raise TuituneError(f"{prefix or 'top level'} must be a JSON object", path=source)
    version = data.get("schema_version", schema_version)
    if schema_version is not None and version != schema_version:
        newer = isinstance(version, int) and version > schema_version
        raise TuituneError(
            f"field '{prefix}schema_version' is {version!r}, this tuitune reads version "
            f"{schema_version}",
            path=source,
            fix="upgrade tuitune" if newer else "recreate the file with this tuitune",
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise TuituneError(
            f"unknown field '{prefix}{unknown[0]}'", path=source, fix="remove it or check spelling"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TuituneError(f"missing field '{prefix}{name}'", path=source)
            continue
        value, tp = data[name], hints[name]
        if not _check_type(value, tp):
            raise TuituneError(
                f"field '{prefix}{name}' has the wrong type ({type(value).__name__})",
                path=source,
                fix=f"expected {getattr(tp, '__name__', tp)}",
            )
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            value = from_dict(
                tp, value, source=source, schema_version=None, prefix=f"{prefix}{name}."
            )
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TuituneError as e:
        raise TuituneError(e.message, path=source, fix=e.fix) from None
