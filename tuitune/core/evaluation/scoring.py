"""Before/after evaluation of a run: launch the evaluation child, and judge its figures honestly.

``run_evaluation`` writes ``RUN/eval/evalspec.json`` and runs ``python -m
tuitune.runner.evaluate EVALSPEC.json`` (the training environment: GPU where there is one),
forwarding its ``progress`` events. The child loads the base exactly as the run trained it
(the spec's precision: 4-bit for QLoRA, the training dtype otherwise), evaluates the base with
the adapter disabled and the tuned model with it enabled (full SFT: base, then tuned, never
both at once), and writes ``RUN/eval/results.json`` atomically.

Honesty rules (issue 6): every figure carries its sample size; every before/after difference
gets a paired, seeded bootstrap interval, and a difference whose interval contains zero is
reported as "not significant", never as an improvement.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_text_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.jsonio import from_dict, read_json
from tuitune.core.runs.events import EventTail
from tuitune.core.runs.rundir import RunDir
from tuitune.core.session import EvalChoice
from tuitune.core.spec import TrainSpec

RESULTS_SCHEMA_VERSION = 1
EVALSPEC_SCHEMA_VERSION = 1
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
# The forgetting bound the report states: general-text perplexity may rise by at most this
# share, and general-question accuracy must not drop significantly.
FORGETTING_PPL_BOUND = 0.10


@dataclass(frozen=True)
class EvalSpec:
    """What the evaluation child needs; written as JSON next to the results."""

    run_dir: str
    base_model: str
    adapter: str = ""  # PEFT adapter dir, or a full model dir (full SFT); "" = base only
    task: str = ""
    eval_file: str = ""
    general_file: str = ""
    preference_file: str = ""  # held-out pairs (DPO runs): reward accuracy and margin
    beta: float = 0.1
    max_new_tokens: int = 128
    limit: int = 0
    batch_size: int = 0  # 0 = 16 on CPU, 32 on GPU
    max_length: int = 1024
    seed: int = 42
    trust_remote_code: bool = False
    use_cpu: bool = False
    # How the run trained (tuitune.core.hardware.precision reads them): the base loads the same way
    method: str = "lora"
    bf16: bool = False
    fp16: bool = False
    load_in_4bit: bool = False
    schema_version: int = EVALSPEC_SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> EvalSpec:
        data = read_json(path, what="evaluation spec")
        return from_dict(cls, data, source=path, schema_version=EVALSPEC_SCHEMA_VERSION)


# ---- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One metric before and after, with a paired bootstrap interval on the difference."""

    metric: str
    n: int
    before: float | None
    after: float | None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    significant: bool = False
    higher_is_better: bool = True
    group: str = "task"  # task | loss | forgetting | preference

    @property
    def verdict(self) -> str:
        """improved / worse / not significant / no change / '' (one side missing)."""
        if self.delta is None:
            return ""
        if not self.significant:
            return "no change" if self.delta == 0 else "not significant"
        good = (self.delta > 0) == self.higher_is_better
        return "improved" if good else "worse"


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    *,
    seed: int,
    weights: Sequence[float] | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """(delta, low, high): after - before of the (weighted) mean, percentile interval.

    Resamples examples with replacement, keeping each example's pair together, so the
    interval reflects how much the difference depends on which examples were drawn.
    """
    n = len(before)
    if n == 0 or n != len(after):
        raise ValueError("paired_bootstrap needs two equal, non-empty lists")
    w = list(weights) if weights is not None else [1.0] * n

    def stat(idx: Sequence[int]) -> float:
        tw = sum(w[i] for i in idx) or 1.0
        return sum((after[i] - before[i]) * w[i] for i in idx) / tw

    delta = stat(range(n))
    rng = random.Random(seed)
    draws = sorted(stat([rng.randrange(n) for _ in range(n)]) for _ in range(samples))
    alpha = (1.0 - confidence) / 2
    low = draws[int(math.floor(alpha * (samples - 1)))]
    high = draws[int(math.ceil((1 - alpha) * (samples - 1)))]
    return delta, low, high


def compare(
    metric: str,
    before: Sequence[float] | None,
    after: Sequence[float] | None,
    *,
    seed: int,
    weights: Sequence[float] | None = None,
    higher_is_better: bool = True,
    group: str = "task",
    transform: Callable[[float], float] | None = None,
) -> Comparison:
    """Summarise per-example values; significant only when the interval excludes zero."""
    ref = before if before is not None else after
    n = len(ref) if ref is not None else 0
    w = list(weights) if weights is not None else None

    def agg(xs: Sequence[float] | None) -> float | None:
        if not xs:
            return None
        value = sum(x * (w[i] if w else 1.0) for i, x in enumerate(xs)) / (sum(w) if w else len(xs))
        return transform(value) if transform else value

    b, a = agg(before), agg(after)
    if not before or not after:
        return Comparison(metric, n, b, a, higher_is_better=higher_is_better, group=group)
    d, lo, hi = paired_bootstrap(before, after, seed=seed, weights=w)
    if transform:  # e.g. perplexity = exp(mean NLL): report the delta on the reported scale
        d = a - b
        lo, hi = (transform(_agg_w(before, w) + lo) - b, transform(_agg_w(before, w) + hi) - b)
    significant = (lo > 0 or hi < 0) and d != 0
    return Comparison(metric, n, b, a, d, lo, hi, significant, higher_is_better, group)


def _agg_w(xs: Sequence[float], w: Sequence[float] | None) -> float:
    if w is None:
        return _mean(xs)
    return sum(x * wi for x, wi in zip(xs, w)) / sum(w)


# ---- results ------------------------------------------------------------------------------


@dataclass
class EvalResults:
    """What ``results.json`` holds, with the comparisons as objects."""

    data: dict[str, Any]
    path: Path | None = None
    comparisons: list[Comparison] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> EvalResults:
        comps = [Comparison(**c) for c in data.get("comparisons", [])]
        return cls(data=data, path=path, comparisons=comps)

    @classmethod
    def load(cls, path: str | Path) -> EvalResults:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TuituneError(
                "no evaluation results", path=path, fix="run the evaluation"
            ) from None
        except json.JSONDecodeError as e:
            raise TuituneError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
        if data.get("schema_version") != RESULTS_SCHEMA_VERSION:
            raise TuituneError(
                f"results schema_version {data.get('schema_version')!r} is not "
                f"{RESULTS_SCHEMA_VERSION}",
                path=path,
                fix="re-run the evaluation with this tuitune",
            )
        return cls.from_dict(data, path)

    @property
    def task(self) -> str:
        return self.data.get("task", "")

    @property
    def headline(self) -> Comparison | None:
        name = self.data.get("headline")
        return next((c for c in self.comparisons if c.metric == name), None)

    @property
    def adapter_check(self) -> dict[str, Any]:
        return self.data.get("adapter_check") or {}

    @property
    def generations(self) -> list[dict[str, Any]]:
        return self.data.get("generations", [])

    @property
    def forgetting(self) -> dict[str, Any]:
        return self.data.get("forgetting") or {}

    @property
    def warnings(self) -> list[str]:
        return list(self.data.get("warnings", []))


def finalize(raw: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """Turn the child's per-example figures into the comparisons, verdicts and warnings.

    ``raw`` has, per side ("before"/"after"), per-example lists; pure Python, so tests can
    feed it figures directly.
    """
    comps: list[Comparison] = []
    task = raw.get("task_scores") or {}
    for metric, sides in task.items():
        comps.append(compare(metric, sides.get("before"), sides.get("after"), seed=seed))
    loss = raw.get("loss") or {}
    if loss.get("before") or loss.get("after"):
        nll_b = _per_example_mean(loss.get("before"))
        nll_a = _per_example_mean(loss.get("after"))
        tokens = (loss.get("before") or loss.get("after"))["tokens"]
        for metric, transform in (("eval_loss", None), ("perplexity", math.exp)):
            comps.append(
                compare(
                    metric,
                    nll_b,
                    nll_a,
                    seed=seed,
                    weights=tokens,
                    higher_is_better=False,
                    group="loss",
                    transform=transform,
                )
            )
    general = raw.get("general") or {}
    forgetting: dict[str, Any] = {}
    if general.get("text_before") or general.get("text_after"):
        tb, ta = general.get("text_before"), general.get("text_after")
        tokens = (tb or ta)["tokens"]
        c = compare(
            "general_perplexity",
            _per_example_mean(tb),
            _per_example_mean(ta),
            seed=seed,
            weights=tokens,
            higher_is_better=False,
            group="forgetting",
            transform=math.exp,
        )
        comps.append(c)
        if c.before and c.after is not None:
            rise = c.after / c.before - 1.0
            forgetting["perplexity_rise"] = rise
            forgetting["perplexity_within_bound"] = rise <= FORGETTING_PPL_BOUND
    if general.get("qa_before") or general.get("qa_after"):
        c = compare(
            "general_answers",
            general.get("qa_before"),
            general.get("qa_after"),
            seed=seed,
            group="forgetting",
        )
        comps.append(c)
        if c.delta is not None:
            forgetting["answers_within_bound"] = c.verdict != "worse"
    if forgetting:
        forgetting["bound"] = (
            f"general-text perplexity rises by at most {FORGETTING_PPL_BOUND:.0%} and "
            "general-question accuracy does not drop significantly"
        )
        forgetting["within_bound"] = all(
            v for k, v in forgetting.items() if k.endswith("within_bound")
        )
    pref = raw.get("preference") or {}
    if pref.get("margins"):
        margins = pref["margins"]
        zeros = [0.0] * len(margins)
        acc = [1.0 if m > 0 else 0.0 for m in margins]
        comps.append(
            compare("reward_accuracy", [0.5] * len(acc), acc, seed=seed, group="preference")
        )
        comps.append(compare("reward_margin", zeros, margins, seed=seed, group="preference"))
    warnings = list(raw.get("warnings", []))
    check = raw.get("adapter_check") or {}
    if check and not check.get("applied", True):
        warnings.insert(0, check.get("message", "the tuned model is identical to the base"))
    if forgetting and not forgetting.get("within_bound", True):
        warnings.append("forgetting check outside its bound: " + forgetting["bound"])
    out = {k: v for k, v in raw.items() if k not in ("task_scores",)}
    out.update(
        schema_version=RESULTS_SCHEMA_VERSION,
        per_example={"task": task},
        comparisons=[asdict(c) for c in comps],
        forgetting=forgetting,
        warnings=warnings,
        confidence=CONFIDENCE,
        bootstrap_samples=BOOTSTRAP_SAMPLES,
    )
    return out


def _per_example_mean(side: dict[str, Any] | None) -> list[float] | None:
    """Per-example mean NLL (sum / tokens); weighting by tokens gives the token mean."""
    if not side:
        return None
    return [s / max(t, 1) for s, t in zip(side["nll_sum"], side["tokens"])]


# ---- launching the child ------------------------------------------------------------------


def _run_spec(run: RunDir) -> TrainSpec:
    """The run's TrainSpec (defaults when the run has no spec.json: a bare base evaluation)."""
    if not run.spec.is_file():
        return TrainSpec()
    return TrainSpec.load(run.spec)


def build_evalspec(
    run: RunDir, base_model: Path, adapter: Path | None, choice: EvalChoice, *, seed: int
) -> EvalSpec:
    """The child's spec: the session's evaluation choice plus what the run's spec.json says
    (read through ``TrainSpec.load``: its precision fields decide how the base loads)."""
    spec = _run_spec(run)
    preference = ""
    if spec.method == "dpo" and spec.eval_file:
        preference = spec.eval_file
    eval_file = choice.eval_file
    if not eval_file and spec.data_format != "preference":
        eval_file = spec.eval_file
    return EvalSpec(
        run_dir=str(run.root),
        base_model=str(base_model),
        adapter=str(adapter) if adapter else "",
        task=choice.task,
        eval_file=eval_file,
        general_file=choice.general_file,
        preference_file=preference,
        beta=spec.beta,
        max_new_tokens=choice.max_new_tokens,
        limit=choice.limit,
        max_length=spec.max_length,
        seed=seed,
        trust_remote_code=spec.trust_remote_code,
        use_cpu=spec.use_cpu,
        method=spec.method,
        bf16=spec.bf16,
        fp16=spec.fp16,
        load_in_4bit=spec.load_in_4bit,
    )


def run_evaluation(
    run: RunDir,
    base_model: Path,
    adapter: Path | None,
    choice: EvalChoice,
    *,
    seed: int,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    poll: float = 0.25,
) -> EvalResults:
    """Evaluate base vs tuned in a child process; return the results it wrote.

    ``adapter`` is a PEFT adapter directory (one model load, base = adapter disabled) or a
    full model directory (full SFT: two loads, one after the other); ``None`` evaluates the
    base alone.
    """
    if not choice.eval_file and not choice.task and not choice.general_file:
        raise TuituneError("nothing to evaluate", fix="choose an evaluation task or an eval file")
    espec = build_evalspec(run, base_model, adapter, choice, seed=seed)
    run.eval.mkdir(parents=True, exist_ok=True)
    spec_path = run.eval / "evalspec.json"
    write_text_atomic(spec_path, espec.to_json())
    results_path = run.eval / "results.json"
    log_path = run.eval / "eval.log"
    tail = EventTail(run.events)
    tail.poll()  # skip what training wrote
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.time()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuitune.runner.evaluate", str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            while proc.poll() is None:
                for e in tail.poll():
                    if on_event and e.get("time", 0) >= started - 1:
                        on_event(e)
                time.sleep(poll)
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    for e in tail.poll():
        if on_event:
            on_event(e)
    if proc.returncode != 0 or not results_path.is_file():
        raise TuituneError(
            f"evaluation failed (exit {proc.returncode}): {_last_line(log_path)}",
            path=log_path,
            fix="read the log; rerun with --debug for details",
        )
    return EvalResults.load(results_path)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
