"""What the Hardware, Model and Configure screens show of the core's results.

Only formatting and caching live here: every number comes from ``tuitune.core`` (the probe,
the plan, ``spec_memory``, ``cpu_time``, the catalogue). The plan's memory figure is the one
figure every screen prints, with its assumptions beside it; the what-fits grid and the
catalogue are sized with the plan's own spec, so the plan's model shows the same bytes.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text


def probe_all(probe_kwargs: dict[str, Any], session: Any) -> tuple[Any, list[Any], Any]:
    """Probe (NVML, or a fake one in tests), the what-fits grid and the recommendation."""
    from tuitune.core.hardware.probe import probe
    from tuitune.core.hardware.recommend import recommend, what_fits

    hw = probe(**probe_kwargs)
    fits = what_fits(hw)
    method = session.spec.get("method") if session is not None else None
    rec = recommend(hw, model_for_estimate(session), method=method)
    return hw, fits, rec


def model_for_estimate(session: Any) -> str:
    """What the estimator loads a config from: the default's cached copy, a path or an id."""
    ref = (session.model.ref if session is not None else "") or "default"
    if ref == "default":
        from tuitune.core.models.resolve import resolve_model

        return str(resolve_model(ref).path)
    return ref


def hardware_summary(hw: Any) -> Text:
    t = Text()
    t.append("This machine: ", style="bold")
    t.append(hw.summary())
    if hw.driver_version:
        t.append(
            f"   driver {hw.driver_version}, CUDA {hw.cuda_driver_version or '?'}", style="dim"
        )
    for note in hw.notes:
        t.append(f"\n{note}", style="yellow")
    if hw.nvml_error and not hw.gpus:
        t.append(f"\nno NVIDIA GPU visible (NVML: {hw.nvml_error})", style="dim")
    return t


def device_rows(hw: Any) -> tuple[list[str], list[list[str]]]:
    """Each GPU (name, total, free, others' use, compute capability, bf16); else CPU / MPS."""
    from tuitune.core.hardware.estimate import format_bytes

    header = ["device", "total", "free", "other procs", "compute cap.", "bf16", "flash-attn"]
    rows = []
    for g in hw.gpus:
        cc = ".".join(map(str, g.compute_capability))
        rows.append(
            [
                f"GPU {g.index} {g.name}",
                format_bytes(g.total_bytes),
                format_bytes(g.free_bytes),
                format_bytes(g.others_bytes),
                f"{cc} {g.arch}",
                "yes" if g.bf16 else "no",
                "yes" if g.flash_attention else "no",
            ]
        )
    if not rows:
        name = "Apple MPS (unified memory)" if hw.mps else f"CPU, {hw.cpu_count} cores"
        rows.append(
            [
                name,
                format_bytes(hw.ram_total_bytes),
                format_bytes(hw.ram_available_bytes),
                "-",
                "-",
                "no" if not hw.mps else "yes",
                "no",
            ]
        )
    return header, rows


def fit_rows(fits: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """Model rows x method columns; each cell (memory, verdict)."""
    from tuitune.core.hardware.estimate import format_bytes

    methods: list[str] = []
    table: dict[str, dict[str, Any]] = {}
    for r in fits:
        if r.method not in methods:
            methods.append(r.method)
        cell = (format_bytes(r.bytes_needed) if r.bytes_needed else "-", r.verdict)
        table.setdefault(f"{r.family} {r.size}", {})[r.method] = cell
    rows = [[name, *[cells.get(mth, "") for mth in methods]] for name, cells in table.items()]
    return ["model", *methods], rows


def _reasons(rec: Any) -> list[tuple[str, str]]:
    """The last reason given for each field, in the order fields were first decided."""
    last: dict[str, str] = {}
    for c in rec.choices:
        last[c.field] = f"{c.field} = {c.value!r}: {c.reason}"
    return list(last.items())


def recommendation_answers(rec: Any) -> dict[str, Any]:
    if rec is None:
        return {}
    return {
        "device": rec.device,
        "strategy": rec.strategy,
        "fits": rec.fits,
        "recommended": recommended_spec(rec),
        "reasons": [r for _f, r in _reasons(rec)],
    }


def recommended_spec(rec: Any) -> dict[str, Any]:
    """The recommendation as TrainSpec fields (unknown fields dropped)."""
    if rec is None:
        return {}
    from tuitune.core.spec import TrainSpec

    known = set(TrainSpec.__dataclass_fields__)
    return {k: v for k, v in rec.overrides.items() if k in known}


def hardware_of(app: Any) -> Any:
    """The probed hardware (the Hardware screen's, or a probe now with the app's NVML)."""
    cached = app.cache.get("probe")
    if cached is not None and cached.hardware is not None:
        return cached.hardware
    from tuitune.core.hardware.probe import probe

    return probe(**app.probe_kwargs)


def data_stats_of(app: Any) -> list[int] | None:
    """Tokens per training row, measured once per (files, model) and cached: the plan would
    otherwise tokenize the data again on every Configure keystroke."""
    from tuitune.core.training.plan import data_token_lengths, model_config

    s = app.session
    key = (tuple(s.data.train), s.data.format, s.model.ref)
    cached = app.cache.get("token_lengths")
    if cached is not None and cached[0] == key:
        return cached[1]
    _config, folder = model_config(s.model.ref)
    lengths, _why = data_token_lengths(s, folder)
    app.cache["token_lengths"] = (key, lengths)
    return lengths


def plan_for(app: Any, spec: dict[str, Any] | None = None) -> Any:
    """``core.training.plan.make_plan`` for the session, with ``spec`` as the user's values when given
    (Configure's form), on the probed hardware. Blocking: call it from a worker."""
    import dataclasses

    from tuitune.core.training.plan import make_plan

    session = app.session
    if spec is not None:
        session = dataclasses.replace(session, spec=dict(spec))
    return make_plan(session, hardware=hardware_of(app), data_stats=data_stats_of(app))


def train_examples(app: Any) -> int | None:
    """Training rows: the Data step's count, else the lines of the session's files."""
    data = app.cache.get("data")
    prepared = getattr(data, "prepared", None)
    if prepared is not None:
        return int(prepared.train_rows)
    saved = app.session.answers.get("data") or {}
    if "train_rows" in saved:
        return int(saved["train_rows"])
    n = 0
    for p in app.session.data.train:
        try:
            with open(app.session.resolve(p), "rb") as f:
                n += sum(1 for line in f if line.strip())
        except OSError:
            return None
    return int(n * (1 - app.session.data.val_ratio)) if n else None


def plan_time(app: Any, plan: Any, params: float | None = None, spec: Any = None) -> Any:
    """On a CPU: the run's time estimate (core.hardware.cpu_time); None on a GPU or without figures."""
    hw = hardware_of(app)
    if hw.gpus or plan.estimate is None:
        return None
    from tuitune.core.hardware.cpu_time import cpu_time

    lengths = data_stats_of(app)
    mean = sum(lengths) / len(lengths) if lengths else None
    total = params if params is not None else plan.estimate.total_params
    return cpu_time(spec or plan.spec, total, hw.cpu_count, train_examples(app), mean)


def plan_verdict(plan: Any, timing: Any) -> str:
    """Memory and, on a CPU, time: fits, tight, slow, too slow or no."""
    from tuitune.core.hardware.cpu_time import worst

    return worst(plan.verdict, timing.verdict if timing is not None else "")


VERDICT_STYLE = {
    "fits": "bold green",
    "tight": "bold yellow",
    "slow": "bold yellow",
    "too slow": "bold red",
    "no": "bold red",
}


def plan_memory_text(plan: Any, timing: Any = None, *, prefix: str = "Plan: ") -> Text:
    """The plan's memory figure with its assumptions, and the CPU time, as every screen
    shows them (the same words as ``tuitune plan``)."""
    t = Text()
    word = plan_verdict(plan, timing)
    t.append(prefix, style="bold")
    t.append(f"{plan.spec.method} on {plan.model}  ")
    t.append(word or "?", style=VERDICT_STYLE.get(word, "bold"))
    t.append("\nmemory ", style="bold")
    t.append(plan.memory_line())
    if timing is not None:
        t.append("\ntime   ", style="bold")
        t.append(timing.line())
    return t


def what_fits_for_plan(hw: Any, plan: Any, session: Any = None) -> tuple[list[Any], str]:
    """The what-fits grid sized with the plan's own spec (only the method and model change),
    so the plan's model and method show exactly the plan's figure; and its assumptions."""
    from tuitune.core.hardware.estimate import ModelShape
    from tuitune.core.hardware.recommend import FitRow, needed_bytes, verdict
    from tuitune.core.hardware.spec_memory import estimate_spec
    from tuitune.core.models.catalog import CATALOG, find

    own = find(_own_catalog_key(session.model.ref)) if session is not None else None
    cap = plan.capacity_bytes
    rows = []
    for entry in CATALOG:
        shape = ModelShape.from_config(entry.config, name=entry.name)
        for method in ("full", "lora", "qlora"):
            if method == "qlora" and not hw.gpus:
                rows.append(FitRow(entry.name, entry.family, entry.size, 0, method, 0, "no"))
                continue
            same = own is not None and own.hf_id == entry.hf_id and plan.spec.method == method
            try:
                if same and plan.estimate is not None:
                    e = plan.estimate
                else:
                    spec = plan.spec.replace(method=method, load_in_4bit=method == "qlora")
                    e = estimate_spec(spec, shape, num_gpus=plan.launch.num_processes)
            except Exception:  # noqa: BLE001 - e.g. LoRA targets this family lacks
                continue
            need = needed_bytes(e)
            word = verdict(e, cap) if cap else ""
            rows.append(
                FitRow(entry.name, entry.family, entry.size, e.total_params, method, need, word)
            )
    a = plan.assumptions
    where = "per GPU" if hw.gpus else "in RAM"
    text = (
        f"What fits ({where}, sized like this plan: {a.get('dtype')}, seq {a.get('seq_len')} "
        f"x micro-batch {a.get('micro_batch')}, checkpointing "
        f"{'on' if a.get('gradient_checkpointing') else 'off'}, {plan.spec.optim})"
    )
    if not hw.gpus:
        text += "; on a CPU time decides too: slow = over 1 h, too slow = over 8 h"
    return rows, text


def fit_rows_timed(app: Any, fits: list[Any], plan: Any) -> tuple[list[str], list[list[Any]]]:
    """``fit_rows``; on a CPU each cell's word is memory (from its bytes) and this plan's run
    time for that model size, whichever is worse."""
    hw = hardware_of(app)
    if hw.gpus or plan is None:
        return fit_rows(fits)
    import dataclasses

    from tuitune.core.hardware.recommend import DEFAULT_MARGIN

    cap = plan.capacity_bytes
    timed = []
    for r in fits:
        if r.bytes_needed and cap:
            memory = (
                "fits"
                if r.bytes_needed * (1 + DEFAULT_MARGIN) <= cap
                else ("tight" if r.bytes_needed <= cap else "no")
            )
            timing = plan_time(app, plan, r.params, plan.spec.replace(method=r.method))
            r = dataclasses.replace(r, verdict=plan_verdict_word(memory, timing))
        timed.append(r)
    return fit_rows(timed)


def plan_verdict_word(memory: str, timing: Any) -> str:
    """Memory verdict and time verdict, the worse of the two."""
    from tuitune.core.hardware.cpu_time import worst

    return worst(memory, timing.verdict if timing is not None else "")


def catalog_rows_for_plan(app: Any, plan: Any) -> list[tuple[str, str, str, str]]:
    """Every catalogue model sized with the plan's own spec (same assumptions as the plan's
    figure); the session's own model shows exactly the plan's figure."""
    from tuitune.core.hardware import estimate as est
    from tuitune.core.hardware.recommend import needed_bytes, verdict
    from tuitune.core.hardware.spec_memory import estimate_spec
    from tuitune.core.models.catalog import CATALOG, find

    own = find(_own_catalog_key(app.session.model.ref))
    cap = plan.capacity_bytes
    rows = []
    for model in CATALOG:
        try:
            if own is not None and model.hf_id == own.hf_id and plan.estimate is not None:
                e = plan.estimate  # the plan's own figure, to the byte
            else:
                shape = est.ModelShape.from_config(model.config, name=model.name)
                e = estimate_spec(plan.spec, shape, num_gpus=plan.launch.num_processes)
            memory = verdict(e, cap) if cap else ""
            timing = plan_time(app, plan, e.total_params)
            word = plan_verdict_word(memory, timing) if timing is not None else memory
            mem = est.format_bytes(needed_bytes(e))
        except Exception as exc:  # noqa: BLE001 - one odd config must not hide the rest
            mem, word = f"? ({type(exc).__name__})", ""
        rows.append((f"{model.family} {model.size}", model.hf_id, mem, word))
    return rows


def _own_catalog_key(ref: str) -> str:
    from tuitune.core.models.resolve import DEFAULT_MODEL_NAME

    return DEFAULT_MODEL_NAME if (ref or "default") == "default" else ref


def default_hf_id() -> str:
    """The catalogue's id of the embedded default (its row stands for ``default``)."""
    from tuitune.core.models.catalog import find
    from tuitune.core.models.resolve import DEFAULT_MODEL_NAME

    entry = find(DEFAULT_MODEL_NAME)
    return entry.hf_id if entry is not None else ""
