"""From a session to a launchable spec: the steps the wizard and the replay share.

Curates the session's data into ``RUN/data`` and fills the spec's run-specific fields
(model directory, curated files, format, output directory), so both front ends launch the
same training from the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuitune.core.models import ResolvedModel
from tuitune.core.rundir import RunDir
from tuitune.core.session import Session
from tuitune.core.spec import TrainSpec


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
    from tuitune.core.data.prepare import prepare_data

    prepared = prepare_data(
        [session.resolve(p) for p in session.data.train],
        run.data,
        eval_paths=[session.resolve(p) for p in session.data.eval],
        fmt=session.data.format,
        val_ratio=session.data.val_ratio,
        seed=spec.seed,
        on_bad_rows=session.data.on_bad_rows,
        curation=session.data.curation or None,
        tokenizer_dir=model.path,
        max_length=spec.max_length,
        progress=progress,
    )
    spec = spec.replace(
        model=str(model.path),
        train_file=str(prepared.train_file),
        eval_file=str(prepared.eval_file or ""),
        data_format=prepared.data_format,
        output_dir=str(run.root),
        trust_remote_code=session.model.trust_remote_code,
    )
    return spec, prepared
