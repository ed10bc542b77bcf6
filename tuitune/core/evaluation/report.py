"""Reports: ``RUN/report.md`` and the summary rows the replay, the TUI and ``compare`` print.

Every figure is shown with its sample size and, for before/after pairs, the change with its
95% bootstrap interval and a verdict; a change inside the noise reads "not significant".
The loss curves are drawn from ``events.jsonl`` into ``RUN/eval/loss_curves.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_text_atomic
from tuitune.core.evaluation.figures import comparison_rows, fmt_change, fmt_value, label
from tuitune.core.evaluation.forgetting import mixture_of, mixture_section
from tuitune.core.evaluation.scoring import Comparison, EvalResults
from tuitune.core.jsonio import read_object
from tuitune.core.runs.events import RunCurves, read_events
from tuitune.core.runs.rundir import RunDir, read_spec

MAX_GENERATIONS = 12


def summary_rows(results: EvalResults) -> list[tuple[str, str, str, str, str]]:
    """(metric, n, before, after, change and significance) for every comparison."""
    return comparison_rows(results.comparisons)  # type: ignore[return-value]


# ---- markdown -----------------------------------------------------------------------------


def _cell(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>") or "(empty)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _comparison_table(comps: list[Comparison]) -> list[str]:
    rows = [
        [
            label(c.metric),
            str(c.n),
            fmt_value(c, c.before),
            fmt_value(c, c.after),
            fmt_change(c, interval=True),
        ]
        for c in comps
    ]
    return _table(["metric", "n", "before", "after", "change [95% CI], verdict"], rows)


def plot_loss_curves(run: RunDir, out: Path | None = None) -> Path | None:
    """Train and eval loss from events.jsonl as a PNG (matplotlib, Agg); None without points."""
    curves = RunCurves().extend(read_events(run.events))
    if not curves.train_steps and not curves.eval_steps:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    out = out or run.eval / "loss_curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    if curves.train_steps:
        ax.plot(curves.train_steps, curves.train_loss, label="train loss", lw=1.2)
    if curves.eval_steps:
        ax.plot(curves.eval_steps, curves.eval_loss, "o-", label="eval loss", lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"run {run.id}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


def render_report(run: RunDir, session: Any, results: EvalResults, image: Path | None) -> str:
    data = results.data
    comps = results.comparisons
    head = results.headline
    spec = read_spec(run).to_dict() if run.spec.is_file() else {}
    method = spec.get("method", "?")
    lines = [f"# tuitune report: run {run.id}", ""]
    if session is not None:
        lines.append(f"Session: {getattr(session, 'name', '') or getattr(session, 'id', '')}  ")
    lines += [
        f"Model: `{data.get('model', '')}`  ",
        f"Method: {method}; adapter: `{data.get('adapter') or '-'}`  ",
        f"Written: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
    ]
    if head is not None:
        lines += [
            f"**{label(head.metric)}** on {head.n} held-out prompts: "
            f"{fmt_value(head, head.before)} before, {fmt_value(head, head.after)} after "
            f"({fmt_change(head, interval=True)}).",
            "",
        ]
    for w in results.warnings:
        lines.append(f"> **Warning:** {w}")
    if results.warnings:
        lines.append("")
    task_comps = [c for c in comps if c.group in ("task", "loss")]
    if task_comps:
        task = data.get("task") or "(loss only)"
        desc = (data.get("metric_descriptions") or {}).get("task", "")
        lines += [f"## Before and after: task `{task}`", ""]
        if desc:
            lines += [f"Scorer: {desc}.", ""]
        lines += _comparison_table(task_comps)
        lines += [
            "",
            f"n = examples scored. Changes carry a paired bootstrap {int(100 * data.get('confidence', 0.95))}% "
            f"interval ({data.get('bootstrap_samples', '?')} resamples, seed {data.get('seed')}); "
            "an interval containing zero is reported as not significant. Decoding: greedy, "
            f"max {data.get('decoding', {}).get('max_new_tokens')} new tokens, same prompts for both.",
            "",
        ]
    check = results.adapter_check
    if check:
        status = "yes" if check.get("applied") else "**NO**"
        lines += [
            f"Adapter applied (tuned differs from base): {status}; max logit difference "
            f"{check.get('max_logit_diff', 0):.3g} on {check.get('probe_rows')} probe prompts"
            + (
                f"; {check.get('lora_b_nonzero')}/{check.get('lora_modules')} LoRA B matrices non-zero."
                if "lora_modules" in check
                else "."
            ),
            "",
        ]
    pref = [c for c in comps if c.group == "preference"]
    if pref:
        p = data.get("preference", {})
        lines += ["## Preference pairs (held out)", ""]
        lines += [
            f"Implicit DPO reward beta * (log pi - log ref), beta {p.get('beta')}; the "
            "reference is the base (adapter disabled), so 'before' is chance (50%) and margin 0.",
            "",
        ]
        lines += _comparison_table(pref) + [""]
    forget = [c for c in comps if c.group == "forgetting"]
    if forget:
        f = results.forgetting
        lines += ["## Forgetting check", ""]
        lines += _comparison_table(forget) + [""]
        if f:
            verdict = "within" if f.get("within_bound") else "**outside**"
            rise = f.get("perplexity_rise")
            rise_txt = f" (perplexity {rise:+.1%})" if rise is not None else ""
            lines += [f"Bound: {f.get('bound')}. Result: {verdict} the bound{rise_txt}.", ""]

        mix = mixture_of(run)
        if mix:
            lines += [
                f"Forgetting mitigation: {mix['general_rows_added']} general chat rows were mixed "
                f"into training ({mix['achieved_share']:.0%} of the training set).",
                "",
            ]
        lines += mixture_section(run)
    if image is not None:
        rel = image.relative_to(run.root) if image.is_relative_to(run.root) else image
        lines += ["## Loss curves", "", f"![train and eval loss]({rel.as_posix()})", ""]
    gens = results.generations
    if gens:
        shown = gens[:MAX_GENERATIONS]
        lines += [
            f"## Generations side by side ({len(shown)} of {len(gens)})",
            "",
        ]
        rows = [
            [
                _cell(g.get("prompt", "")),
                _cell(g.get("reference", "")),
                _cell(g.get("before", "")),
                _cell(g.get("after", "-")),
            ]
            for g in shown
        ]
        lines += _table(["prompt", "reference", "before (base)", "after (tuned)"], rows) + [""]
    general = data.get("general_generations") or []
    if general:
        shown = general[:6]
        lines += [f"### General questions ({len(shown)} of {len(general)})", ""]
        rows = [
            [
                _cell(g.get("prompt", "")),
                _cell(g.get("reference", "")),
                _cell(g.get("before", ""), 100),
                _cell(g.get("after", "-"), 100),
            ]
            for g in shown
        ]
        lines += _table(["question", "expected", "before", "after"], rows) + [""]
    if spec:
        keys = (
            "method",
            "learning_rate",
            "max_steps",
            "num_train_epochs",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "lora_r",
            "lora_alpha",
            "lora_target_modules",
            "completion_only_loss",
            "beta",
            "seed",
        )
        rows = [[k, _cell(spec[k])] for k in keys if k in spec]
        lines += ["## Configuration", ""] + _table(["field", "value"], rows)
        lines += ["", f"Full spec: `{run.spec}`", ""]
    manifest = read_object(run.data / "manifest.json")
    if manifest:
        lines += [
            "## Data manifest",
            "",
            "```json",
            json.dumps(manifest, indent=2)[:4000],
            "```",
            "",
        ]
    env = data.get("environment") or {}
    timing = data.get("timing") or {}
    if env or timing:
        rows = [[k, _cell(v)] for k, v in {**env, **timing}.items()]
        lines += ["## Environment", ""] + _table(["", ""], rows) + [""]
    curves = RunCurves().extend(read_events(run.events))
    if curves.final and curves.final.get("train_runtime"):
        lines += [
            f"Training time: {curves.final['train_runtime']:.1f} s, "
            f"{curves.final.get('step')} steps.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def write_report(run: RunDir, session: Any, results: EvalResults) -> Path:
    """Write ``RUN/report.md`` (and the loss-curve PNG it links) atomically."""
    image = plot_loss_curves(run)
    write_text_atomic(run.report, render_report(run, session, results, image))
    return run.report


def compare_rows(runs: list[tuple[str, EvalResults]]) -> tuple[list[str], list[list[str]]]:
    """Several runs side by side: one row per metric, one column per run.

    Each cell is ``after (change, verdict)``; the base column comes from the first run that
    has a 'before' figure, so runs on the same base and eval set line up against it.
    """
    header = ["metric", "n", "base"] + [name for name, _ in runs]
    metrics: list[str] = []
    for _, res in runs:
        metrics += [c.metric for c in res.comparisons if c.metric not in metrics]
    rows: list[list[str]] = []
    for metric in metrics:
        cells, n, base = [], "", "-"
        for _, res in runs:
            c = next((x for x in res.comparisons if x.metric == metric), None)
            if c is None:
                cells.append("-")
                continue
            n = n or str(c.n)
            if base == "-" and c.before is not None:
                base = fmt_value(c, c.before)
            after = fmt_value(c, c.after)
            cells.append(after if c.delta is None else f"{after} ({fmt_change(c)})")
        rows.append([label(metric), n, base, *cells])
    return header, rows
