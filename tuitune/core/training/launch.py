"""From a session to a launchable spec: the steps the wizard and the replay share.

Curates the session's data (the Data screen's preview and the run itself use the same call)
and fills the spec's run-specific fields (model directory, curated files, format, output
directory), so both front ends launch the same training from the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuitune.core.data.mixture import with_resolved_mix_file
from tuitune.core.data.prepare import prepare_data
from tuitune.core.evaluation.report import summary_rows, write_report
from tuitune.core.evaluation.scoring import run_evaluation
from tuitune.core.models.resolve import ResolvedModel
from tuitune.core.runs.rundir import RunDir, mark_failed
from tuitune.core.runs.tracking import check_report_to, where_it_goes
from tuitune.core.session import Session
from tuitune.core.spec import TrainSpec


def prepare_session_data(
    session: Session,
    out_dir: Path,
    model: ResolvedModel,
    *,
    seed: int,
    max_length: int,
    tokenizer: Any = None,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Curate the session's data files into ``out_dir``; returns ``PreparedData``."""
    return prepare_data(
        [session.resolve(p) for p in session.data.train],
        out_dir,
        eval_paths=[session.resolve(p) for p in session.data.eval],
        fmt=session.data.format,
        val_ratio=session.data.val_ratio,
        seed=seed,
        on_bad_rows=session.data.on_bad_rows,
        curation=with_resolved_mix_file(session.data.curation, session.resolve(".")) or None,
        tokenizer_dir=model.path,
        tokenizer=tokenizer,
        max_length=max_length,
        progress=progress,
        columns=session.data.columns or None,
    )


def prepare_run(
    session: Session,
    spec: TrainSpec,
    model: ResolvedModel,
    run: RunDir,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[TrainSpec, Any]:
    """Curate the session's data into ``run.data``; return the spec to launch and the
    ``PreparedData`` (manifest, report, counts)."""
    try:
        check_report_to(spec.report_to)  # a tracker that is not installed fails before any work
        for name in spec.report_to:  # say where the metrics go before anything is sent
            if progress:
                progress(f"tracking: {where_it_goes(name, run)}")
        prepared = prepare_session_data(
            session, run.data, model, seed=spec.seed, max_length=spec.max_length, progress=progress
        )
    except BaseException as e:  # the folder says why it holds no run (tuitune runs)
        mark_failed(run, str(e) or type(e).__name__)
        raise
    spec = spec.replace(
        model=str(model.path),
        train_file=str(prepared.train_file),
        eval_file=str(prepared.eval_file or ""),
        data_format=prepared.data_format,
        output_dir=str(run.root),
        trust_remote_code=session.model.trust_remote_code,
    )
    return spec, prepared


def evaluate_session_run(
    session: Session,
    run: RunDir,
    spec: TrainSpec,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    tuned: Path | None = None,
) -> tuple[Any, Path, list[tuple[str, ...]]]:
    """Evaluate a finished run of ``session`` base vs tuned and write ``RUN/report.md``.

    The one evaluation path of the wizard and the replay: every method is scored against
    its base (an adapter applied to the base, or a full-SFT model directory in ``run.adapter``
    loaded by the eval child beside the base), on the session's evaluation file or else the
    run's validation split. ``tuned`` scores another directory than ``run.adapter`` (a
    stopped run's last checkpoint, see core.training.evaluate_run). Returns (results, report path, rows).
    """
    import dataclasses

    ev = session.evaluation
    choice = dataclasses.replace(
        ev,
        eval_file=str(session.resolve(ev.eval_file)) if ev.eval_file else (spec.eval_file or ""),
        general_file=str(session.resolve(ev.general_file)) if ev.general_file else "",
    )
    results = run_evaluation(
        run, Path(spec.model), tuned or run.adapter, choice, seed=spec.seed, on_event=on_event
    )
    report = write_report(run, session, results)
    return results, report, summary_rows(results)
