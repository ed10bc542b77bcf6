"""Presentation of the hardware helper's core results (probe, estimate, recommend, catalog).

Only formatting lives here: every number comes from ``tuitune.core.probe``, ``estimate``,
``recommend`` and ``model_catalog``. Until those modules exist the functions raise, and the
screens say the figures are unavailable.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tuitune.core.errors import TuituneError


def _missing(module: str) -> TuituneError:
    return TuituneError(f"{module} is not available in this build")


def probe_all(probe_kwargs: dict[str, Any], session: Any) -> tuple[Any, list[Any], Any]:
    try:
        from tuitune.core import probe, recommend  # noqa: F401
    except ImportError:
        raise _missing("tuitune.core.probe") from None
    raise _missing("tuitune.core.probe")


def hardware_summary(hw: Any) -> Text:
    return Text(str(hw))


def device_rows(hw: Any) -> tuple[list[str], list[list[str]]]:
    return ["device"], []


def fit_rows(fits: list[Any]) -> tuple[list[str], list[list[Any]]]:
    return ["method"], []


def recommendation_text(rec: Any) -> Text:
    return Text(str(rec or ""))


def recommendation_answers(rec: Any) -> dict[str, Any]:
    return {}


def recommended_spec(rec: Any) -> dict[str, Any]:
    return {}


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


def capacity_bytes(app: Any) -> int | None:
    """Memory of the training device from the probe, when it ran."""
    probe = app.cache.get("probe")
    if probe is None or probe.hardware is None:
        return None
    return getattr(probe.hardware, "capacity_bytes", None)


def fit_word(est_bytes: int, capacity: int | None) -> str:
    if not capacity:
        return ""
    if est_bytes * 1.1 <= capacity:
        return "fits"
    return "tight" if est_bytes <= capacity else "no"


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
            mem, verdict = est.format_bytes(e.peak_reserved), fit_word(e.peak_reserved, cap)
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
    verdict = fit_word(e.peak_reserved, cap)
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
