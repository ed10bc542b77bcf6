"""The effect of forgetting mitigation: a run trained with general data mixed in, against the
same run without it, on the same forgetting check and the same task.

Two runs are counterparts when everything but the mixture matches: the training spec (minus
its paths), the input files (by SHA-256), and the evaluation (task, eval file, general file).
Both sides were evaluated on the same items, so each figure is compared item by item with
the evaluation's paired bootstrap (``before`` = without the mixture, ``after`` = with it) and
"not significant" is said when the interval contains zero. ``report.py`` calls
``mixture_section(run)`` to add the comparison to report.md when a counterpart exists.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.figures import comparison_rows
from tuitune.core.evaluation.scoring import compare
from tuitune.core.jsonio import read_object
from tuitune.core.runs.rundir import RunDir, read_spec

_PATH_KEYS = ("train_file", "eval_file", "output_dir", "model")


def mixture_of(run: RunDir) -> dict[str, Any] | None:
    """The run's mixture entry from its data manifest (None: trained without general data)."""
    return read_object(run.data / "manifest.json").get("mixture") or None


def _signature(run: RunDir) -> tuple[str, ...] | None:
    """What must match between counterparts; None when the run is not comparable yet."""
    try:
        trained = read_spec(run).to_dict()
    except TuituneError:  # never started, or a spec from elsewhere: not a counterpart
        return None
    manifest = read_object(run.data / "manifest.json")
    results = read_object(run.eval / "results.json")
    if not manifest or not results:
        return None
    spec = {k: v for k, v in trained.items() if k not in _PATH_KEYS}
    spec["model_name"] = Path(trained.get("model", "")).name
    inputs = sorted(i.get("sha256", "") for i in manifest.get("inputs", []))
    split = manifest.get("split", {})
    evaluation = [results.get(k) for k in ("task", "eval_file", "general_file", "n_eval")]
    return (
        json.dumps(spec, sort_keys=True),
        json.dumps(inputs),
        json.dumps([split.get("val_ratio"), split.get("seed")]),
        json.dumps(evaluation),
    )


def find_counterpart(run: RunDir, search: list[Path] | None = None) -> RunDir | None:
    """The newest evaluated run identical to ``run`` except for the mixture (with it when
    ``run`` has none, without it when ``run`` has one); searches the run's own folder and
    the runs directory unless ``search`` names folders."""
    mine = _signature(run)
    if mine is None:
        return None
    has_mix = mixture_of(run) is not None
    folders = search if search is not None else [run.root.parent, paths.runs_dir()]
    candidates: list[RunDir] = []
    seen: set[Path] = {run.root.resolve()}
    for folder in folders:
        if not folder.is_dir():
            continue
        for d in folder.iterdir():
            if not d.is_dir() or d.resolve() in seen:
                continue
            seen.add(d.resolve())
            other = RunDir(d)
            if (mixture_of(other) is not None) == has_mix:
                continue
            if _signature(other) == mine:
                candidates.append(other)
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.eval / "results.json").stat().st_mtime)


@dataclass
class MixtureEffect:
    """Figures of the tuned models with and without the mixture (before = without)."""

    with_mix: RunDir
    without_mix: RunDir
    mixture: dict[str, Any]
    comparisons: list[Any]  # tuitune.core.evaluation.scoring.Comparison

    def rows(self) -> list[tuple[str, ...]]:
        return comparison_rows(self.comparisons, interval=True)


def _nll(side: dict[str, Any] | None) -> tuple[list[float], list[float]] | None:
    if not side:
        return None
    return [s / max(t, 1) for s, t in zip(side["nll_sum"], side["tokens"])], side["tokens"]


def mixture_effect(run: RunDir, other: RunDir | None = None) -> MixtureEffect | None:
    """Compare ``run`` with its counterpart (found when not given); None when there is none."""
    other = other or find_counterpart(run)
    if other is None:
        return None
    with_mix, without = (run, other) if mixture_of(run) else (other, run)
    mixture = mixture_of(with_mix)
    if mixture is None:
        return None
    a, b = read_object(without.eval / "results.json"), read_object(with_mix.eval / "results.json")
    seed = int(b.get("seed", 42))
    comps = []
    ga, gb = a.get("general") or {}, b.get("general") or {}
    qa, qb = ga.get("qa_after"), gb.get("qa_after")
    if qa and qb and len(qa) == len(qb):
        comps.append(compare("general_answers", qa, qb, seed=seed, group="forgetting"))
    ta, tb = _nll(ga.get("text_after")), _nll(gb.get("text_after"))
    if ta and tb and len(ta[0]) == len(tb[0]):
        comps.append(
            compare(
                "general_perplexity",
                ta[0],
                tb[0],
                seed=seed,
                weights=ta[1],
                higher_is_better=False,
                group="forgetting",
                transform=math.exp,
            )
        )
    sa = (a.get("per_example") or {}).get("task") or {}
    sb = (b.get("per_example") or {}).get("task") or {}
    for metric in sa:
        xa, xb = (sa[metric] or {}).get("after"), (sb.get(metric) or {}).get("after")
        if xa and xb and len(xa) == len(xb):
            comps.append(compare(metric, xa, xb, seed=seed, group="task"))
    la, lb = _nll((a.get("loss") or {}).get("after")), _nll((b.get("loss") or {}).get("after"))
    if la and lb and len(la[0]) == len(lb[0]):
        comps.append(
            compare(
                "eval_loss",
                la[0],
                lb[0],
                seed=seed,
                weights=la[1],
                higher_is_better=False,
                group="loss",
            )
        )
    return MixtureEffect(with_mix, without, mixture, comps)


def mixture_section(run: RunDir, other: RunDir | None = None) -> list[str]:
    """Markdown lines for report.md ([] when no counterpart run exists)."""
    effect = mixture_effect(run, other)
    if effect is None or not effect.comparisons:
        return []
    m = effect.mixture
    lines = [
        "### Effect of the general-data mixture",
        "",
        f"Tuned models compared item by item: without the mixture (run "
        f"`{effect.without_mix.id}`) and with {m.get('general_rows_added')} general rows "
        f"({m.get('achieved_share', 0):.0%} of training, run `{effect.with_mix.id}`). "
        "'without' and 'with' columns are the tuned models' figures; the change is with minus "
        "without, with a paired bootstrap 95% interval.",
        "",
        "| metric | n | without mixture | with mixture | change [95% CI], verdict |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in effect.rows()]
    return lines + [""]
