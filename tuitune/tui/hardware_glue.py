"""Presentation of the hardware helper's core results (probe, estimate, recommend, catalog).

Only formatting lives here: every number comes from ``tuitune.core.probe``, ``estimate``,
``recommend`` and ``model_catalog``. Until those modules exist the functions raise, and the
screens say the figures are unavailable.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text


def probe_all(probe_kwargs: dict[str, Any], session: Any) -> tuple[Any, list[Any], Any]:
    """Probe (NVML, or a fake one in tests), the what-fits grid and the recommendation."""
    from tuitune.core.probe import probe
    from tuitune.core.recommend import recommend, what_fits

    hw = probe(**probe_kwargs)
    fits = what_fits(hw)
    method = session.spec.get("method") if session is not None else None
    rec = recommend(hw, model_for_estimate(session), method=method)
    return hw, fits, rec


def model_for_estimate(session: Any) -> str:
    """What the estimator loads a config from: the default's cached copy, a path or an id."""
    ref = (session.model.ref if session is not None else "") or "default"
    if ref == "default":
        from tuitune.core.models import resolve_model

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
    from tuitune.core.estimate import format_bytes

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
    from tuitune.core.estimate import format_bytes

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


def recommendation_text(rec: Any) -> Text:
    from tuitune.core.estimate import format_bytes
    from tuitune.core.recommend import needed_bytes

    t = Text()
    t.append("Recommendation: ", style="bold")
    t.append(f"{rec.setup.label} on {rec.model}, {rec.device} ({rec.strategy})")
    need = needed_bytes(rec.estimate)
    t.append(f", about {format_bytes(need)} of {format_bytes(rec.capacity_bytes)} usable ")
    t.append("fits" if rec.fits else "does not fit", style="green" if rec.fits else "bold red")
    for _field, reason in _reasons(rec):
        t.append(f"\n - {reason}")
    for note in rec.notes:
        t.append(f"\n ! {note}", style="yellow")
    return t


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


def capacity_bytes(app: Any) -> int | None:
    """Usable memory of the training device from the probe, when it ran."""
    probe = app.cache.get("probe")
    if probe is None or probe.hardware is None:
        return None
    from tuitune.core.recommend import device_capacity

    return device_capacity(probe.hardware)


def fit_word(est: Any, capacity: int | None) -> str:
    if not capacity:
        return ""
    from tuitune.core.recommend import verdict

    return verdict(est, capacity)


def setup_for_spec(spec: dict[str, Any]) -> Any:
    """The estimator's TrainSetup for the fields of a TrainSpec dict."""
    from tuitune.core import estimate as est

    method = str(spec.get("method", "lora"))
    if method == "dpo":
        m, objective = "lora", "dpo"
    elif method in est.METHODS:
        m, objective = method, "sft"
    else:  # reward / grpo train a LoRA adapter too
        m, objective = "lora", "sft"
    dtype = "bf16" if spec.get("bf16") else ("fp16" if spec.get("fp16") else "fp32")
    optim = spec.get("optim") if spec.get("optim") in est.OPTIMIZERS else "adamw_torch"
    attn = spec.get("attn_implementation") or "sdpa"
    return est.TrainSetup(
        method=m,
        objective=objective,
        seq_len=int(spec.get("max_length", 1024)),
        micro_batch=int(spec.get("per_device_train_batch_size", 2)),
        grad_ckpt=bool(spec.get("gradient_checkpointing", True)),
        lora_r=int(spec.get("lora_r", 16)),
        lora_targets=tuple(spec.get("lora_target_modules") or ("all-linear",)),
        lora_dropout=float(spec.get("lora_dropout", 0.0)),
        use_dora=bool(spec.get("use_dora", False)),
        optim=optim,
        attn_impl=attn if attn in est.ATTN_IMPLEMENTATIONS else "sdpa",
        dtype=dtype,
    )


def catalog_rows(app: Any, method: str) -> list[tuple[str, str, str, str]]:
    """Every catalog model with its estimated peak memory for ``method`` on this machine."""
    from tuitune.core import estimate as est
    from tuitune.core.model_catalog import CATALOG

    spec = {**app.spec_dict(), "method": method}
    setup = setup_for_spec(spec)
    cap = capacity_bytes(app)
    rows = []
    for model in CATALOG:
        try:
            e = est.estimate(est.ModelShape.from_config(model.config, name=model.name), setup)
            mem, verdict = est.format_bytes(e.peak_reserved), fit_word(e, cap)
        except Exception as exc:  # noqa: BLE001 - one odd config must not hide the rest
            mem, verdict = f"? ({type(exc).__name__})", ""
        rows.append((f"{model.family} {model.size}", model.hf_id, mem, verdict))
    return rows


def estimate_for_spec(app: Any, spec: dict[str, Any]) -> Text:
    """One or two lines: the estimated peak for the model being configured, and its parts."""
    from tuitune.core import estimate as est
    from tuitune.core.models import resolve_model

    ref = app.session.model.ref or "default"
    model = str(resolve_model(ref).path) if ref == "default" else ref
    e = est.estimate_model(model, setup_for_spec(spec))
    cap = capacity_bytes(app)
    verdict = fit_word(e, cap)
    t = Text()
    t.append("Estimated peak memory: ", style="bold")
    t.append(est.format_bytes(e.peak_reserved), style="bold")
    if verdict:
        t.append(f" {verdict}", style={"fits": "green", "tight": "yellow", "no": "red"}[verdict])
    if cap:
        t.append(f" of {est.format_bytes(cap)}")
    t.append(
        f"   {e.trainable_params / 1e6:.1f}M of {e.total_params / 1e6:.0f}M parameters trained\n"
    )
    parts = sorted(e.components.items(), key=lambda kv: -kv[1])[:4]
    t.append(", ".join(f"{k} {est.format_bytes(v)}" for k, v in parts), style="dim")
    return t
