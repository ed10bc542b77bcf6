"""The training spec: one frozen, versioned dataclass, serialised to JSON.

The same object is stored in the session file and handed to the training child as
``python -m tuitune.runner SPEC.json``. Field docs live in ``metadata["help"]`` (as TRL's
``ScriptArguments`` do) so the wizard can show a one-line explanation per field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.jsonio import from_dict, read_json

SPEC_SCHEMA_VERSION = 1

METHODS = ("full", "lora", "qlora", "dpo", "reward", "grpo")
DATA_FORMATS = (
    "messages",
    "prompt_completion",
    "preference",
    "text",
    "unpaired_preference",
    "input_output",
)


# Names the installed libraries accept, bundled so a session is checked without importing
# transformers (seconds); tests/training/test_spec_validation.py keeps them equal to transformers'
# OptimizerNames / SchedulerType and the attention registry.
OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor",
    "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
    "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit",
    "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit",
    "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor",
    "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo",
    "adalomo", "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd",
    "apollo_adamw", "apollo_adamw_layerwise", "stable_adamw",
)  # fmt: skip
SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "greedy",
)  # fmt: skip
ATTENTION = (
    "", "sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3",
    "flash_attention_4",
)  # fmt: skip


def _f(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    also: tuple[Any, ...] = (),
    nonempty: bool = False,
    **kw: Any,
) -> Any:
    """A field with its help and its rule: bounds, allowed names, or exceptions (``also``)."""
    meta: dict[str, Any] = {"help": help}
    rule = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "also": also}
    meta.update({k: v for k, v in rule.items() if v not in (None, ())})
    if nonempty:
        meta["nonempty"] = True
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class TrainSpec:
    """Everything the training child needs; nothing it must guess."""

    model: str = _f("", "Local directory of the base model (resolved before launch).")
    method: str = _f("lora", "full | lora | qlora | dpo | reward | grpo.")
    train_file: str = _f("", "Curated training data, JSONL in TRL's standard form.")
    eval_file: str = _f("", "Curated validation data, JSONL; empty for none.")
    data_format: str = _f("messages", "Format of train_file: " + " | ".join(DATA_FORMATS) + ".")
    output_dir: str = _f("", "The run directory: checkpoints, events.jsonl, train.log.")
    seed: int = _f(42, "Seed for data order, initialisation and dropout.", ge=0)
    # Optimisation (seed defaults: lr 2e-4, 2-3 epochs, batch 2 x accumulation 8, cosine).
    learning_rate: float = _f(
        2e-4, "Peak learning rate; 2e-4 for LoRA, ~1e-5 for full SFT.", gt=0.0, le=1.0
    )
    num_train_epochs: float = _f(3.0, "Passes over the training data.", gt=0.0, le=1000.0)
    max_steps: int = _f(
        -1, "Stop after this many optimizer steps; -1 means use epochs.", ge=1, also=(-1,)
    )
    per_device_train_batch_size: int = _f(
        2, "Examples per micro-batch on each device.", ge=1, le=4096
    )
    gradient_accumulation_steps: int = _f(
        8, "Micro-batches summed per optimizer step.", ge=1, le=4096
    )
    lr_scheduler_type: str = _f(
        "cosine", "Learning-rate schedule after warmup.", choices=SCHEDULERS
    )
    warmup_ratio: float = _f(
        0.05, "Share of steps spent warming up the learning rate.", ge=0.0, lt=1.0
    )
    weight_decay: float = _f(0.01, "Decoupled weight decay of AdamW.", ge=0.0, le=1.0)
    max_grad_norm: float = _f(1.0, "Gradient clipping norm; 0 turns clipping off.", ge=0.0)
    optim: str = _f(
        "adamw_torch",
        "Optimizer: adamw_torch, adamw_torch_fused, paged_adamw_8bit...",
        choices=OPTIMIZERS,
    )
    max_length: int = _f(
        1024,
        "Tokens per example; longer ones are dropped by curation (never cut mid-answer).",
        ge=16,
        le=1_048_576,
    )
    gradient_checkpointing: bool = _f(True, "Recompute activations to save memory (~30% slower).")
    bf16: bool = _f(False, "Train in bfloat16 (GPUs with compute capability >= 8.0).")
    fp16: bool = _f(False, "Train in float16 mixed precision (older GPUs).")
    completion_only_loss: bool = _f(True, "Mask prompt tokens (-100): train on answers only.")
    # LoRA / QLoRA
    lora_r: int = _f(16, "LoRA rank: capacity of the adapter; 8-64 is usual.", ge=1, le=4096)
    lora_alpha: int = _f(32, "LoRA scaling numerator; 2x rank is the usual choice.", ge=1, le=65536)
    lora_dropout: float = _f(0.05, "Dropout on the adapter's input.", ge=0.0, lt=1.0)
    lora_target_modules: list[str] = _f(
        ["all-linear"],
        "Modules that get adapters: all-linear, or names such as q_proj.",
        nonempty=True,
    )
    use_dora: bool = _f(False, "DoRA: weight-decomposed LoRA; slower, sometimes better.")
    load_in_4bit: bool = _f(False, "QLoRA: nf4 weights with double quantization.")
    init_adapter: str = _f("", "Adapter to continue from (DPO on top of an SFT adapter).")
    # Preference / RL
    beta: float = _f(
        0.1, "DPO temperature: how far the policy may move from the reference.", gt=0.0, le=100.0
    )
    reward_function: str = _f("", "GRPO: name of the programmatic reward (a task scorer).")
    num_generations: int = _f(4, "GRPO: completions sampled per prompt.", ge=2, le=1024)
    max_completion_length: int = _f(
        128, "GRPO: tokens generated per completion.", ge=1, le=1_048_576
    )
    # Logging, evaluation and checkpoints
    logging_steps: int = _f(1, "Optimizer steps between train-loss events.", ge=1)
    eval_steps: int = _f(0, "Steps between validation-loss events; 0 picks ~10 per run.", ge=0)
    save_steps: int = _f(0, "Steps between checkpoints; 0 picks ~5 per run.", ge=0)
    save_total_limit: int = _f(2, "Checkpoints kept on disk.", ge=1)
    # Speed levers
    packing: bool = _f(False, "Pack several examples per row (best-fit decreasing).")
    attn_implementation: str = _f(
        "", "sdpa, eager, flex_attention or flash_attention_2; empty = auto.", choices=ATTENTION
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
        for f in dataclasses.fields(self):
            problem = field_problem(f.name, getattr(self, f.name))
            if problem:
                raise TuituneError(f"field '{f.name}' {problem}", fix=field_fix(f.name))
        if self.bf16 and self.fp16:
            raise TuituneError(
                "fields 'bf16' and 'fp16' are both true", fix="set at most one of them"
            )
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
        return cls.from_dict(read_json(path, what="spec file"), source=path)

    @staticmethod
    def help(name: str) -> str:
        for f in dataclasses.fields(TrainSpec):
            if f.name == name:
                return f.metadata.get("help", "")
        raise KeyError(name)


_FIELDS = {f.name: f for f in dataclasses.fields(TrainSpec)}
_HINTS = typing.get_type_hints(TrainSpec)


def field_rule(name: str) -> dict[str, Any]:
    """The declared rule of a field: ge/gt/le/lt bounds, choices, also (allowed exceptions)."""
    meta = _FIELDS[name].metadata
    return {k: v for k, v in meta.items() if k != "help"}


def rule_text(name: str) -> str:
    """The rule in words, e.g. ">= 1 and <= 4096, or -1"."""
    r = field_rule(name)
    parts = [f"{op} {r[k]:g}" for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
             if k in r]  # fmt: skip
    text = " and ".join(parts)
    if "choices" in r:
        shown = [c for c in r["choices"] if c][:6]
        text = "one of " + ", ".join(shown) + (", ..." if len(r["choices"]) > 6 else "")
    if "also" in r:
        text += ", or " + ", ".join(map(str, r["also"]))
    if r.get("nonempty"):
        text = "at least one name"
    return text


def field_fix(name: str) -> str:
    f = _FIELDS[name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    text = rule_text(name)
    return f"set {name} to {text} (default {default!r})" if text else f"check {name}"


def field_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not allowed for field ``name`` (None when it is): the one rule used by
    session loading, ``--set``, the plan and the Configure screen."""
    r = field_rule(name)
    if value in r.get("also", ()) and not isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}, not a finite number"
    if "choices" in r and value not in r["choices"]:
        return f"is {value!r}, not a known name"
    if r.get("nonempty") and not value:
        return "is empty"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, ok in (
            ("ge", lambda lim: value >= lim),
            ("gt", lambda lim: value > lim),
            ("le", lambda lim: value <= lim),
            ("lt", lambda lim: value < lim),
        ):
            if key in r and not ok(r[key]):
                return f"is {value!r}, must be {rule_text(name)}"
    return None


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(name: str, raw: str) -> Any:
    """The typed value of field ``name`` from text (``--set``, a form field); range-checked.

    Raises TuituneError naming the field, what was wrong and the fix.
    """
    if name not in _FIELDS or name in ("schema_version",):
        raise TuituneError(
            f"unknown field {name!r}", fix="use a TrainSpec field, e.g. max_steps or learning_rate"
        )
    tp, text = _HINTS[name], raw.strip()
    value: Any
    try:
        if tp is bool:
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            value = low in _TRUE
        elif tp is int:
            value = int(text)
        elif tp is float:
            value = float(text)
        elif typing.get_origin(tp) is list:
            if text.startswith("["):
                value = json.loads(text)
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError
            else:
                value = [x.strip() for x in text.split(",") if x.strip()]
        else:
            value = text
    except (ValueError, json.JSONDecodeError):
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp, "a list")
        raise TuituneError(f"field '{name}' is {raw!r}, not {kind}", fix=field_fix(name)) from None
    problem = field_problem(name, value)
    if problem:
        raise TuituneError(f"field '{name}' {problem}", fix=field_fix(name))
    return value


def parse_set(items: list[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs (``--set``) as typed, range-checked TrainSpec values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in _FIELDS or key == "schema_version":
            raise TuituneError(
                f"bad --set {item!r}",
                fix="use FIELD=VALUE with a TrainSpec field, e.g. max_steps=20",
            )
        try:
            out[key] = parse_value(key, raw)
        except TuituneError as e:
            raise TuituneError(f"--set {item!r}: {e.message}", fix=e.fix) from None
    return out


def show_value(value: Any, sep: str = ", ") -> str:
    """A spec value as a user types it: lists joined by ``sep``, floats short (2e-05)."""
    if isinstance(value, list):
        return sep.join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
