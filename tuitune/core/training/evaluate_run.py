"""Evaluating a run after the fact: ``tuitune evaluate RUN`` and the wizard's Evaluate on
any finished or stopped run, with the replay's evaluation (``core.training.launch``'s
``evaluate_session_run``) from the run's own session and spec.

A finished run is scored with its saved adapter (or model); a stopped, failed or killed one
with its last complete checkpoint, and the report says which step that is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.runs.process import last_checkpoint, run_state
from tuitune.core.runs.rundir import RunDir
from tuitune.core.runs.session_of import run_session
from tuitune.core.spec import TrainSpec
from tuitune.core.training.launch import evaluate_session_run


@dataclass(frozen=True)
class RunEvaluation:
    """What one evaluation of a run produced."""

    run: RunDir
    results: Any  # core.evaluation.scoring.EvalResults
    report: Path
    rows: list[tuple[str, ...]]
    tuned: Path  # the adapter or model directory that was scored
    step: int | None  # the checkpoint's step for a run that did not finish

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run.root),
            "tuned": str(self.tuned),
            "step": self.step,
            "report": str(self.report),
            "results": str(self.run.eval / "results.json"),
            "rows": [dict(zip(("metric", "n", "before", "after", "change"), r)) for r in self.rows],
        }


def tuned_model(run: RunDir) -> tuple[Path, int | None]:
    """The directory to score: RUN/adapter when the run finished, else its last complete
    checkpoint (with that checkpoint's step)."""
    state = run_state(run)
    if state in ("running", "preparing"):
        raise TuituneError(
            f"this run is still {state}",
            path=run.root,
            fix="wait for it, or tuitune stop RUN first (then evaluate its checkpoint)",
        )
    if state == "finished" and run.adapter.is_dir():
        return run.adapter, None
    ckpt = last_checkpoint(run)
    if ckpt is None:
        raise TuituneError(
            f"this run ({state}) has no saved model and no complete checkpoint to evaluate",
            path=run.root,
            fix="tuitune resume RUN to train it further first",
        )
    return ckpt, int(ckpt.name.split("-")[1])


def evaluate_run(
    run: RunDir,
    session: Any = None,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunEvaluation:
    """Base vs tuned for ``run`` from its own session (``core.runs.session_of``) and spec;
    writes RUN/eval/results.json and RUN/report.md."""
    if not run.spec.is_file():
        raise TuituneError("this run has no spec.json: it never started", path=run.root)
    session = session if session is not None else run_session(run)
    if not (session.evaluation.task or session.evaluation.eval_file):
        spec_eval = TrainSpec.load(run.spec).eval_file
        if not spec_eval:
            raise TuituneError(
                "nothing to evaluate: the session names no task or eval file and the run "
                "kept no validation split",
                path=run.root / "session.json",
                fix="choose an evaluation on the wizard's Evaluate step",
            )
    tuned, step = tuned_model(run)
    spec = TrainSpec.load(run.spec)
    results, report, rows = evaluate_session_run(session, run, spec, on_event=on_event, tuned=tuned)
    return RunEvaluation(run=run, results=results, report=report, rows=rows, tuned=tuned, step=step)
