"""The plan: from a session, the hardware and the data, the one run tuitune will launch.

Every front end goes through here: ``tuitune plan`` prints it, ``tuitune replay`` prints it
and launches it, the wizard shows it on Hardware, Configure and Train and launches it with
the same ``launch_plan``. So the judgement that lives in core (the method's own defaults,
the recommendation that fits memory, the speed recipe, the launcher for several GPUs, the
fit gate) reaches every run, and the two front ends cannot drift apart.

The layers, lowest first; a later one wins, and the user's own values win over all:
TrainSpec defaults < method defaults (``method_defaults``) < the data (format, lengths) <
the recommendation (``recommend``: method, precision, what fits) < the recipe (``recipe``:
packing, attention, Liger, checkpointing by need, micro-batch by cost) < the user (the
session's ``spec`` and ``--set``). Each field's final value is one ``PlanChoice`` with its
reason and where it came from.

Only the model's config is read (a local folder, the HF cache or the bundled catalogue),
never its weights; the data's token lengths need the tokenizer and are skipped, with a note,
when none is at hand.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_json_atomic
from tuitune.core.data.formats import TARGET_OF, detect_format
from tuitune.core.data.loading import iter_rows
from tuitune.core.data.prepare import load_tokenizer
from tuitune.core.data.reading import read_and_convert
from tuitune.core.data.stats import token_lengths
from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.tasks import TASKS
from tuitune.core.hardware import recipe as recipe_mod
from tuitune.core.hardware.estimate import ModelShape, format_bytes, load_shape
from tuitune.core.hardware.gpu_table import hardware_for
from tuitune.core.hardware.probe import probe
from tuitune.core.hardware.recommend import (
    DEFAULT_MARGIN,
    device_capacity,
    needed_bytes,
    recommend,
    verdict,
)
from tuitune.core.hardware.spec_memory import estimate_spec
from tuitune.core.hardware.torch_device import torch_gpu_problem
from tuitune.core.method_defaults import defaults_for
from tuitune.core.models import catalog as model_catalog
from tuitune.core.models.resolve import DEFAULT_MODEL_NAME, default_model_dir, resolve_model
from tuitune.core.runs.nodes import SINGLE, Nodes
from tuitune.core.runs.process import child_command, start_run
from tuitune.core.session import Session
from tuitune.core.spec import TrainSpec, show_value
from tuitune.core.training.launch import prepare_run

SOURCES = ("user", "recommendation", "recipe", "method default", "data")
FITS, TIGHT, NO = "fits", "tight", "no"
# What --replan re-decides for this machine even where the session set it.
MEMORY_BOUND = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "gradient_checkpointing",
    "method",
    "load_in_4bit",
)
# Filled when the run is prepared (paths of this run), not planned.
RUN_FIELDS = ("model", "train_file", "eval_file", "output_dir", "trust_remote_code")
SFT_METHODS = ("full", "lora", "qlora")
PREFERENCE_FORMATS = ("preference", "unpaired_preference")
# The seeds' memory checklist, in its order (recommend.py applies it the same way).
CHECKLIST = (
    ("per_device_train_batch_size", "micro-batch 1 with more gradient accumulation"),
    ("gradient_checkpointing", "gradient checkpointing on (~30% slower, far less activation)"),
    ("method", "QLoRA: 4-bit base weights (NVIDIA GPU)"),
    ("max_length", "a shorter max_length (longer examples are dropped)"),
    ("attn_implementation", "flash attention (pip install flash-attn)"),
    ("bf16", "bf16 on a GPU that has it"),
    ("lora_r", "a lower LoRA rank"),
    ("optim", "paged 8-bit AdamW (optim=paged_adamw_8bit)"),
)


@dataclass(frozen=True)
class PlanChoice:
    """One field of the spec: its value, why, and whose decision it was."""

    field: str
    value: Any
    reason: str
    source: str  # one of SOURCES


@dataclass(frozen=True)
class Launch:
    """How the run starts: how many processes, which strategy, the command line."""

    num_processes: int
    strategy: str  # single | ddp | fsdp | cpu | mps
    fsdp: bool
    command: list[str]
    effective_batch: int  # units per optimizer step over all processes (every machine's)
    unit: str = "examples"  # examples | packed rows
    nodes: int = 1  # machines; num_processes is per machine (GPUs per node)

    @property
    def world_size(self) -> int:
        """Processes over every machine: what the effective batch and FSDP count."""
        return self.num_processes * self.nodes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    """The exact spec to launch, every choice with its reason, the launch and the memory."""

    spec: TrainSpec
    choices: list[PlanChoice]
    launch: Launch
    estimate: Any  # MemoryEstimate, or None when the architecture cannot be estimated
    capacity_bytes: int
    verdict: str  # fits | tight | no
    advice: list[str]
    assumptions: dict[str, Any]
    levers: list[Any] = field(default_factory=list)  # recipe.Lever
    notes: list[str] = field(default_factory=list)
    hardware: dict[str, Any] = field(default_factory=dict)
    differs: list[str] = field(default_factory=list)  # recorded hardware vs this one
    session_path: str = ""
    model: str = ""

    @property
    def fits(self) -> bool:
        """Launchable without an override: the estimate fits with the margin kept free."""
        return self.verdict == FITS

    @property
    def verdict_words(self) -> str:
        """The verdict as a user reads it."""
        return "does not fit" if self.verdict == NO else self.verdict

    @property
    def needed_bytes(self) -> int:
        return needed_bytes(self.estimate) if self.estimate is not None else 0

    def choice(self, name: str) -> PlanChoice:
        for c in self.choices:
            if c.field == name:
                return c
        raise KeyError(name)

    def memory_line(self) -> str:
        """The one memory figure, with its assumptions, shown by every front end."""
        a = self.assumptions
        if self.estimate is None:
            return f"memory not estimated ({a.get('why', 'unknown architecture')})"
        where = f" of {format_bytes(self.capacity_bytes)} usable" if self.capacity_bytes else ""
        tight = (
            f"; inside the {DEFAULT_MARGIN:.0%} margin: may run out of memory"
            if self.verdict == TIGHT
            else ""
        )
        return (
            f"{format_bytes(self.needed_bytes)}{where} per device: {self.verdict_words} "
            f"({a['method']}, {a['dtype']}, seq {a['seq_len']} x micro-batch {a['micro_batch']}, "
            f"checkpointing {'on' if a['gradient_checkpointing'] else 'off'}){tight}"
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"spec", "levers", "launch", "estimate", "verdict", ...}`` for ``--json``."""
        return {
            "spec": self.spec.to_dict(),
            "levers": [
                {"name": lv.name, "on": lv.on, "value": lv.value, "reason": lv.reason}
                for lv in self.levers
            ],
            "choices": [dataclasses.asdict(c) for c in self.choices],
            "launch": self.launch.to_dict(),
            "estimate": self.estimate.to_dict() if self.estimate is not None else None,
            "needed_bytes": self.needed_bytes,
            "capacity_bytes": self.capacity_bytes,
            "verdict": self.verdict,
            "advice": list(self.advice),
            "assumptions": dict(self.assumptions),
            "notes": list(self.notes),
            "hardware": dict(self.hardware),
            "differs": list(self.differs),
            "session": self.session_path,
            "model": self.model,
        }

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(field, value, source, reason) per choice, for a table."""
        return [(c.field, show_value(c.value, ","), c.source, c.reason) for c in self.choices]

    def lines(self) -> list[str]:
        """The plan as plain lines (``tuitune plan``, replay's header)."""
        out = [f"plan: {self.model} on {self.hardware.get('summary', '?')}"]
        out += [f"  ! hardware differs from the session's: {d}" for d in self.differs]
        la = self.launch
        machines = f"{la.nodes} machines x " if la.nodes > 1 else ""
        out.append(
            f"launch: {la.strategy}, {machines}{la.num_processes} process(es), effective batch "
            f"{la.effective_batch} {la.unit} per optimizer step"
        )
        out.append(f"memory: {self.memory_line()}")
        width = max((len(c.field) for c in self.choices), default=10)
        for c in self.choices:
            out.append(
                f"  {c.field:<{width}}  {show_value(c.value, ','):<18} [{c.source}] {c.reason}"
            )
        out += [f"note: {n}" for n in self.notes]
        out += [f"advice: {a}" for a in self.advice]
        return out


# --------------------------------------------------------------------------------------
# Inputs: hardware, the model's config, the data
# --------------------------------------------------------------------------------------


def plan_hardware(hardware: Any = None, gpu: str | None = None) -> tuple[Any, str]:
    """(HardwareInfo, "probe" | "table"): a named GPU from the table, the given probe, or a
    fresh probe of this machine."""
    if gpu:
        return hardware_for(gpu), "table"
    if hardware is not None:
        return hardware, "given"

    return probe(), "probe"


def hardware_record(hw: Any, source: str = "probe") -> dict[str, Any]:
    """What a session records of the machine it was planned on (compared on replay)."""
    return {
        "summary": hw.summary(),
        "accelerator": hw.accelerator,
        "gpus": [g.name for g in hw.gpus],
        "gpu_total_bytes": [g.total_bytes for g in hw.gpus],
        "source": source,
    }


def hardware_differences(session: Session, now: dict[str, Any]) -> list[str]:
    """How this machine differs from the one the session was last planned on."""
    rec = (session.answers.get("plan") or {}).get("hardware") or {}
    if not rec:
        hw_answers = session.answers.get("hardware") or {}
        if hw_answers.get("device"):
            rec = {"accelerator": hw_answers.get("device")}
    out: list[str] = []
    if rec.get("accelerator") and rec["accelerator"] != now["accelerator"]:
        out.append(f"recorded on {rec['accelerator']}, now {now['accelerator']}")
    if "gpus" in rec and rec["gpus"] != now["gpus"]:
        was = ", ".join(rec["gpus"]) or "no GPU"
        out.append(f"recorded GPUs {was}; now {', '.join(now['gpus']) or 'no GPU'}")
    return out


def model_config(ref: str) -> tuple[dict[str, Any] | None, Path | None]:
    """(config dict, local model folder) of ``ref`` without loading weights or downloading.

    ``default`` is the embedded SmolLM2: its converted folder when it exists (tokenizer at
    hand), else the catalogue's config.
    """
    import json

    ref = (ref or "default").strip()
    if ref == "default":
        d = default_model_dir()
        if (d / "config.json").is_file() and (d / ".tuitune-complete").is_file():
            return json.loads((d / "config.json").read_text(encoding="utf-8")), d
        entry = model_catalog.find(DEFAULT_MODEL_NAME)
        return (entry.config if entry else None), None
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        try:
            return json.loads((path / "config.json").read_text(encoding="utf-8")), path
        except ValueError:
            return None, path
    entry = model_catalog.find(ref)
    folder = _hf_cache_folder(ref)
    if entry is not None:
        return entry.config, folder
    if folder is not None and (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text(encoding="utf-8")), folder
    return None, None


def _hf_cache_folder(repo_id: str) -> Path | None:
    if "/" not in repo_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id, or no huggingface_hub: simply not cached
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def load_model_shape(ref: str, config: dict[str, Any] | None) -> Any:
    if config is not None:
        name = Path(ref).name if ref not in ("", "default") else "SmolLM2-135M-Instruct"
        return ModelShape.from_config(config, name=name)
    return load_shape(ref or "default")


def detect_data_format(session: Session, sample: int = 200) -> tuple[str | None, str]:
    """(TrainSpec data_format, how it was found) from the session's files, cheaply: the
    declared source format, or the detector on the first ``sample`` rows."""
    declared = session.data.format
    if declared and declared != "auto":
        return TARGET_OF.get(declared, declared), f"declared as {declared}"
    rows: list[dict[str, Any]] = []
    try:
        for item in iter_rows([session.resolve(p) for p in session.data.train], on_bad_rows="skip"):
            if isinstance(item.data, dict):
                rows.append(item.data)
            if len(rows) >= sample:
                break
    except (OSError, TuituneError, ValueError):
        pass
    if not rows:
        return None, "no rows read"
    guess = detect_format(rows)
    if not guess.known:
        return None, guess.reason
    return guess.target, f"detected {guess.name} on the first {len(rows)} rows"


NO_TOKENIZER = "no tokenizer at hand"  # the plan's note when it could not measure the data


def data_token_lengths(
    session: Session, folder: Path | None, *, limit: int = 20000
) -> tuple[list[int] | None, str]:
    """Tokens per training row with the chat template, as curation counts them; (None, why)
    when no tokenizer is at hand or the rows cannot be rendered."""
    if folder is None or not any(
        (folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")
    ):
        return None, NO_TOKENIZER + " (only the model's config): planned on max_length"
    try:
        items, _guess, _mixed = read_and_convert(
            [session.resolve(p) for p in session.data.train],
            fmt=session.data.format,
            on_bad_rows="skip",
        )
        rows = [it.row for it in items[:limit]]
        lengths = token_lengths(rows, load_tokenizer(folder))
    except Exception as e:  # noqa: BLE001 - advice only: plan on max_length and say why
        return None, f"token lengths not measured ({type(e).__name__}: {e}); planned on max_length"
    return lengths, f"{len(lengths)} rows measured with the model's tokenizer"


# --------------------------------------------------------------------------------------
# Validation: everything a run needs, checked before any data preparation
# --------------------------------------------------------------------------------------


def validate(
    session: Session,
    spec: TrainSpec,
    *,
    shape: Any = None,
    config: dict[str, Any] | None = None,
    data_format: str | None = None,
    user: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Refuse, in one line naming the session file, the field and the fix, a spec that
    cannot train: field ranges are checked by TrainSpec itself; here the checks that need
    the model, the data or the task registry."""
    src = session.path or "session"

    def fail(fld: str, msg: str, fix: str) -> None:
        raise TuituneError(f"field '{fld}' {msg}", path=src, fix=fix)

    if shape is not None and spec.uses_peft:
        names = [lin.name for lin in shape.linears()]
        allowed = {*names, "lm_head", "all-linear", "embed_tokens"}
        for t in spec.lora_target_modules:
            if t not in allowed:
                fail(
                    "spec.lora_target_modules",
                    f"names {t!r}, which {shape.name} does not have",
                    "use all-linear or some of " + ", ".join(names),
                )
    ctx = 0
    if config:
        cfg = (
            config.get("text_config", config) if "max_position_embeddings" not in config else config
        )
        ctx = int(cfg.get("max_position_embeddings") or 0)
    if ctx and spec.max_length > ctx and "max_length" in user:
        fail(
            "spec.max_length",
            f"is {spec.max_length}, longer than the model's context of {ctx} tokens",
            f"set max_length to at most {ctx}",
        )
    task = session.evaluation.task
    if task and task not in TASKS:
        fail(
            "evaluation.task",
            f"is {task!r}, not a known evaluation task",
            "use one of " + ", ".join(sorted(TASKS)),
        )
    if data_format:
        if spec.method in ("dpo", "reward") and data_format not in PREFERENCE_FORMATS:
            fail(
                "spec.method",
                f"is {spec.method}, which trains on preference pairs; the data is {data_format}",
                "give data with prompt/chosen/rejected, or use method lora for SFT data",
            )
        if spec.method in SFT_METHODS and data_format in PREFERENCE_FORMATS:
            fail(
                "spec.method",
                f"is {spec.method} (supervised fine-tuning); the data is preference pairs",
                "use method dpo (or reward) for chosen/rejected data",
            )
        if (
            data_format in ("text", "input_output")
            and session.evaluation.task
            and not session.evaluation.eval_file
        ):
            fail(
                "evaluation.eval_file",
                f"is empty, and the validation rows of {data_format} data have no prompt to "
                "answer, so the task cannot score them",
                "give evaluation.eval_file with messages or prompt/completion rows, or clear "
                "evaluation.task",
            )
        if spec.method == "reward" and data_format == "unpaired_preference":
            fail(
                "spec.method",
                "is reward, which needs paired chosen/rejected rows; the data is unpaired",
                "give paired preference data",
            )


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------


def user_fields(session: Session, overrides: dict[str, Any] | None, replan: bool) -> dict[str, Any]:
    """The values the user gave: the session's spec and ``--set`` (which wins)."""
    given = {k: v for k, v in session.spec.items() if k != "schema_version"}
    given.update(overrides or {})
    if replan:
        for k in MEMORY_BOUND:
            if k in session.spec and k not in (overrides or {}):
                given.pop(k)
    return given


def _advice(spec: TrainSpec, hw: Any, rec: Any) -> list[str]:
    out = []
    for fld, text in CHECKLIST:
        v = getattr(spec, fld)
        if fld == "per_device_train_batch_size" and v <= 1:
            continue
        if fld == "gradient_checkpointing" and v:
            continue
        if fld == "method" and (spec.method == "qlora" or spec.load_in_4bit or not hw.gpus):
            continue
        if fld == "attn_implementation" and (
            not hw.gpus
            or v == "flash_attention_2"
            or any(tuple(g.compute_capability or (0, 0)) < (8, 0) for g in hw.gpus)
        ):  # FlashAttention 2 needs Ampere or newer
            continue
        if fld == "bf16" and (spec.bf16 or not hw.gpus or not all(g.bf16 for g in hw.gpus)):
            continue
        if fld == "lora_r" and (not spec.uses_peft or v <= 4):
            continue
        if fld == "optim" and (not hw.gpus or "8bit" in spec.optim):
            continue
        if fld == "max_length" and v <= 256:
            continue
        out.append(text)
    tail = [n for n in (rec.notes if rec is not None else ()) if "largest listed" in n]
    return [f"{i}. {t}" for i, t in enumerate(out, 1)] + tail


def make_plan(
    session: Session,
    *,
    hardware: Any = None,
    gpu: str | None = None,
    overrides: dict[str, Any] | None = None,
    data_stats: Any = None,
    replan: bool = False,
    num_processes: int | None = None,
    nodes: Nodes = SINGLE,
) -> Plan:
    """The plan for ``session`` on ``hardware`` (None: probe this machine) or a ``gpu`` from
    the bundled table ("A100-80GB x4"), with ``overrides`` (``--set``, already typed) winning.

    ``data_stats``: token lengths per training row (or a DataStats) when the caller has them;
    otherwise they are measured when the model's tokenizer is at hand. ``replan``: re-decide
    the memory-bound fields (``MEMORY_BOUND``) for this machine even where the session set
    them. ``num_processes``: that many data-parallel processes instead of one per GPU (on a
    CPU: torchrun on gloo, for tests and many-core machines). ``nodes``: that many machines
    of this kind train together (``core.runs.nodes``); accumulation, the effective batch and FSDP
    count every process on every machine. Raises TuituneError for a spec that cannot train
    (before any data preparation).
    """
    src = session.path or "session"
    given = user_fields(session, overrides, replan)
    try:
        user_spec = TrainSpec.from_dict({**given, "schema_version": 1}, source=src)
    except TuituneError as e:
        raise TuituneError(e.message, path=e.path or src, fix=e.fix) from None
    user = set(given)
    hw, hw_source = plan_hardware(hardware, gpu)
    record = hardware_record(hw, hw_source)
    config, folder = model_config(session.model.ref)
    notes: list[str] = []
    shape = None
    why_no_shape = ""
    try:
        shape = load_model_shape(session.model.ref, config)
    except TuituneError as e:
        why_no_shape = e.message
        notes.append(f"memory not estimated: {e.message}")
    data_format, fmt_how = detect_data_format(session)
    validate(session, user_spec, shape=shape, config=config, data_format=data_format, user=user)

    method = user_spec.method if "method" in user else None
    values: dict[str, Any] = TrainSpec().to_dict()
    sources: dict[str, tuple[str, str]] = {}

    def put(name: str, value: Any, reason: str, source: str) -> None:
        values[name] = value
        sources[name] = (source, reason)

    if data_format:
        put("data_format", data_format, fmt_how, "data")
    # Data: token lengths (the recommendation sets max_length from them)
    lengths: list[int] | None = None
    if data_stats is not None:
        lengths = list(data_stats) if isinstance(data_stats, (list, tuple)) else None
        if lengths is None:
            hist = getattr(data_stats, "token_histogram", None)
            if hist:  # bin midpoints, the longest bin capped at the measured longest row
                top = int(getattr(data_stats, "token_max", 0) or hist[-1][1])
                lengths = [min(top, (lo + hi) // 2) for lo, hi, c in hist for _ in range(int(c))]
                lengths.append(top)
        length_note = f"token lengths of {len(lengths or [])} rows, from the data already measured"
    else:
        lengths, length_note = data_token_lengths(session, folder)
    notes.append(length_note)

    # The recommendation: what fits this machine, sized with the spec's own values
    rec = None
    if shape is not None:
        base_method = method or "lora"
        method_values = {k: v for k, (v, _r) in defaults_for(base_method).items()}
        sizing = {**values, **method_values, **given, "method": base_method}
        sizing_spec = TrainSpec.from_dict({**sizing, "schema_version": 1}, source=src)
        target = user_spec.per_device_train_batch_size * user_spec.gradient_accumulation_steps
        want = (
            target if {"per_device_train_batch_size", "gradient_accumulation_steps"} & user else 16
        )
        rec = recommend(
            hw,
            shape,
            method=method,
            seq_len=user_spec.max_length if "max_length" in user else None,
            token_lengths=lengths,
            effective_batch=want,
            allow_method_change="method" not in user,
            spec=sizing_spec,
        )
        vague = ("final choice", "final sequence length", "micro-batch per device")
        for i, c in enumerate(rec.choices):
            if c.field not in values:
                continue
            if c.reason in vague and c.field in sources and values[c.field] == c.value:
                continue  # the earlier, specific reason stands
            if i == 0 and c.field == "max_length" and lengths:
                put(c.field, c.value, c.reason, "data")
            else:
                put(c.field, c.value, c.reason, "recommendation")
        notes += [n for n in rec.notes if "does not fit" not in n and "largest listed" not in n]
    # The method's own defaults (the recommendation may have changed the method)
    chosen_method = given.get("method", values["method"])
    for name, (value, reason) in defaults_for(chosen_method).items():
        if name not in sources or sources[name][0] != "recommendation":
            put(name, value, reason, "method default")
    # The user's values win over everything above
    for name, value in given.items():
        put(name, value, "you set it" + _was(name, value, values, sources), "user")

    # Several GPUs: accumulation divided across the processes
    n_gpus = len(hw.gpus)
    procs = num_processes or (n_gpus if n_gpus > 1 else 1)
    world = procs * nodes.count  # processes on every machine
    strategy = rec.strategy if rec is not None else ("single" if hw.gpus else "cpu")
    if world > 1 and ("gradient_accumulation_steps" in user or num_processes or nodes.multi):
        accum = values["gradient_accumulation_steps"]
        whose = "your" if "gradient_accumulation_steps" in user else "the"
        per = max(1, math.ceil(accum / world))
        micro = values["per_device_train_batch_size"]
        same = per * world == accum
        put(
            "gradient_accumulation_steps",
            per,
            f"{whose} {accum} accumulation steps divided across {world} processes: "
            f"{micro} x {per} x {world} = {micro * per * world} per optimizer step"
            + ("" if same else f" (not {micro * accum}: accumulation is whole steps)"),
            sources.get("gradient_accumulation_steps", ("recommendation",))[0],
        )
    spec = TrainSpec.from_dict({**values, "schema_version": 1}, source=src)
    if folder is not None and not spec.model:
        spec_for_recipe = spec.replace(model=str(folder))
    else:
        spec_for_recipe = spec

    fsdp = strategy == "fsdp"

    def estimate_fn(s: TrainSpec) -> int:
        if shape is None:
            raise TuituneError(why_no_shape or "no model shape")

        return needed_bytes(estimate_spec(s, shape, num_gpus=world, fsdp=fsdp))

    recipe = recipe_mod.choose_recipe(
        spec_for_recipe,
        hw,
        lengths,
        estimate_fn,
        memory_budget=device_capacity(hw) or None,
        fixed=user,
    )
    lever_field = {
        "packing": "packing",
        "attn_implementation": "attn_implementation",
        "use_liger_kernel": "use_liger_kernel",
        "torch_compile": "torch_compile",
        "gradient_checkpointing": "gradient_checkpointing",
    }
    reasons = {lever_field.get(lv.name, lv.name): lv.reason for lv in recipe.levers}
    batch_reason = next((lv.reason for lv in recipe.levers if lv.name == "micro_batch"), "")
    packing_on = bool(recipe.spec_overrides.get("packing"))
    for name, value in recipe.spec_overrides.items():
        if name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
            if name in user and (not packing_on or "packing" in user):
                continue  # the user's batch, in the user's units: kept as theirs
            why = batch_reason
            if name in user:
                why = f"from your {given[name]} ({batch_reason})"
            put(name, value, why, "recipe")
        elif name not in user:
            put(name, value, reasons.get(name, "speed recipe"), "recipe")
    notes += recipe.notes
    if hw.gpus and hw_source != "table":
        problem = torch_gpu_problem(hw) or ""
        if problem:
            notes.insert(0, problem)

    spec = TrainSpec.from_dict({**values, "schema_version": 1}, source=src)
    # Launch: strategy for the final spec (the user's values may differ from the advice)
    est = None
    capacity = device_capacity(hw)
    word = FITS
    if shape is not None:
        est = estimate_spec(spec, shape, num_gpus=world, fsdp=fsdp)
        if world > 1 and not fsdp and verdict(est, capacity) == NO:
            sharded = estimate_spec(spec, shape, num_gpus=world, fsdp=True)
            if verdict(sharded, capacity) != NO:
                est, fsdp, strategy = sharded, True, "fsdp"
                notes.append(f"FSDP over {world} GPUs: one GPU cannot hold a full copy")
        word = verdict(est, capacity) if capacity else FITS
    if world > 1 and strategy not in ("ddp", "fsdp"):
        strategy = "fsdp" if fsdp else "ddp"
    if not hw.gpus:
        strategy = "mps" if hw.mps else ("ddp" if world > 1 else "cpu")
    command = _command(procs, fsdp, cuda=bool(hw.gpus), nodes=nodes)
    unit = "packed rows" if spec.packing else "examples"
    effective = spec.per_device_train_batch_size * spec.gradient_accumulation_steps * world
    setup = est.setup if est is not None else None
    assumptions = {
        "method": setup.label if setup else spec.method,
        "dtype": setup.dtype
        if setup
        else ("bf16" if spec.bf16 else "fp16" if spec.fp16 else "fp32"),
        "seq_len": setup.seq_len if setup else spec.max_length,
        "micro_batch": setup.micro_batch if setup else spec.per_device_train_batch_size,
        "gradient_checkpointing": spec.gradient_checkpointing,
        "packing": spec.packing,
        "num_processes": procs,
        "nodes": nodes.count,
        "fsdp": fsdp,
        "lora_dropout": spec.lora_dropout if spec.uses_peft else None,
        "why": why_no_shape,
    }
    advice = _advice(spec, hw, rec) if word != FITS else []
    if word != FITS and est is not None:
        levers_left = any(a[:1].isdigit() for a in advice)
        header = (
            "does not fit"
            if word == NO
            else f"does not fit with the {DEFAULT_MARGIN:.0%} margin the estimate keeps (its "
            "error against measured peaks is up to 10%, so an out-of-memory is likely)"
        )
        advice.insert(
            0,
            f"{header}: needs {format_bytes(needed_bytes(est))} per device, "
            f"{format_bytes(capacity)} usable; "
            + ("try, in this order:" if levers_left else "no lever of the checklist is left:"),
        )
    order = [
        "method", "load_in_4bit", "data_format", "max_length", "learning_rate",
        "num_train_epochs", "max_steps", "per_device_train_batch_size",
        "gradient_accumulation_steps", "gradient_checkpointing", "packing",
        "attn_implementation", "use_liger_kernel", "torch_compile", "bf16", "fp16", "optim",
    ]  # fmt: skip
    names = [n for n in order if n in sources] + sorted(n for n in sources if n not in order)
    choices = [PlanChoice(n, values[n], sources[n][1], sources[n][0]) for n in names]
    return Plan(
        spec=spec,
        choices=choices,
        launch=Launch(procs, strategy, fsdp, command, effective, unit, nodes.count),
        estimate=est,
        capacity_bytes=capacity,
        verdict=word,
        advice=advice,
        assumptions=assumptions,
        levers=list(recipe.levers),
        notes=[n for n in dict.fromkeys(notes) if n],
        hardware=record,
        differs=hardware_differences(session, record) if hw_source != "table" else [],
        session_path=session.path,
        model=shape.name if shape is not None else session.model.ref,
    )


def _was(
    name: str, _given_value: Any, values: dict[str, Any], sources: dict[str, tuple[str, str]]
) -> str:
    if name in sources and sources[name][0] != "user" and values[name] != _given_value:
        src, _reason = sources[name]
        return f" (the {src} was {show_value(values[name], ',')})"
    return ""


def _command(procs: int, fsdp: bool, *, cuda: bool, nodes: Nodes = SINGLE) -> list[str]:
    return child_command(
        Path("RUN/spec.json"), num_processes=procs, fsdp=fsdp, cuda=cuda, nodes=nodes
    )


# --------------------------------------------------------------------------------------
# The fit gate and the launch
# --------------------------------------------------------------------------------------


def fit_refusal(plan: Plan) -> str | None:
    """Why the fit gate stops ``plan``, or None. A tight plan (over the margin, under the
    capacity) is stopped too: the margin is about the estimator's error, so it is a coin toss."""
    if plan.verdict == FITS:
        return None
    what = "does not fit" if plan.verdict == NO else "is tight on"
    return f"the plan {what} this machine: {plan.memory_line()}"


def check_fit(plan: Plan, *, force: bool = False) -> None:
    """A plan the estimate says does not fit (or only without the margin) is not launched
    unless forced."""
    refusal = fit_refusal(plan)
    if refusal and not force:
        raise TuituneError(
            refusal,
            path=plan.session_path or None,
            fix="; ".join(a for a in plan.advice[1:4]) + "; or --force to launch anyway",
        )


@dataclass
class Launched:
    """What ``launch_plan`` started: the spec written to the run, its data, the pid."""

    spec: TrainSpec
    prepared: Any
    pid: int
    model: Any


def launch_plan(
    plan: Plan,
    session: Session,
    run: Any,
    *,
    model: Any = None,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
    num_processes: int | None = None,
    **start_kwargs: Any,
) -> Launched:
    """Prepare the data into ``run`` and start the training child as the plan says.

    The one launch path of the wizard and the replay: the fit gate (``force`` overrides it),
    model resolution, ``core.training.launch.prepare_run`` and ``core.runs.process.start_run`` with the plan's
    processes and FSDP (``num_processes`` replaces the plan's count, e.g. per node of a
    several-machine run; ``start_kwargs`` go to ``start_run``). The plan is written to
    ``RUN/plan.json``.
    """
    check_fit(plan, force=force)
    say = progress or (lambda _t: None)
    if model is None:
        say(f"resolving model {session.model.ref!r}...")
        model = resolve_model(session.model.ref)
    say("preparing data...")
    spec, prepared = prepare_run(session, plan.spec, model, run, progress=progress)
    # the spec written to the run is the plan's, but for this run's own paths
    same = planned_fields(spec) == planned_fields(plan.spec)
    write_json_atomic(run.root / "plan.json", {**plan.to_dict(), "launched_as_planned": same})
    say("starting the training process...")
    pid = start_run(
        spec,
        run,
        num_processes=num_processes or plan.launch.num_processes,
        fsdp=plan.launch.fsdp,
        **start_kwargs,
    )
    session.answers["plan"] = {"hardware": plan.hardware, "verdict": plan.verdict}
    return Launched(spec=spec, prepared=prepared, pid=pid, model=model)


def planned_fields(spec: TrainSpec) -> dict[str, Any]:
    """The spec minus the run's own paths: what must be equal between plan and spec.json."""
    return {k: v for k, v in spec.to_dict().items() if k not in RUN_FIELDS}
