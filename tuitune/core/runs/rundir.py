"""The layout of a run directory, in one place.

RUN/
  run.json          run id, session path, created; the preparing process's pid from the
                    start, the child's pid from the launch, or why the launch failed
  session.json      the session the run came from (paths made absolute)
  spec.json         the TrainSpec the child trains from
  events.jsonl      the event protocol (tuitune.core.runs.events)
  train.log         the child's stdout and stderr
  data/             curated train.jsonl, eval.jsonl and manifest.json
  checkpoints/      Trainer checkpoints (checkpoint-N)
  adapter/          the final adapter (PEFT methods) or model (full SFT)
  eval/             before.json, after.json (evaluation results)
  report.md         the human-readable report
  exports/          merged models, quantized saves, exported configs
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.atomic import write_json_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.jsonio import read_object
from tuitune.core.runs.pids import proc_start_time
from tuitune.core.spec import TrainSpec


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def exports(self) -> Path:
        return self.root / "exports"


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def new_run_dir(out: str | Path | None = None, prefix: str = "run") -> RunDir:
    """Create a fresh run directory under ``out`` (default: the runs directory).

    Its ``run.json`` names this process as the one preparing it, so a folder whose launch
    never happened reads as failed (with the reason when one was recorded), never as
    nothing."""
    # Absolute: the training child runs inside the run folder, so a relative --out would
    # point its spec and data paths at the wrong place.
    base = Path(out).expanduser().resolve() if out else paths.runs_dir()
    root = base / new_run_id(prefix)
    root.mkdir(parents=True, exist_ok=False)
    run = RunDir(root)
    mark_preparing(run)
    return run


def find_run(ref: str | Path) -> RunDir:
    """A run by path or by id (looked up in the runs directory)."""
    p = Path(ref).expanduser()
    if (p / "spec.json").is_file() or (p / "events.jsonl").is_file():
        return RunDir(p.resolve())
    q = paths.runs_dir() / str(ref)
    if q.is_dir():
        return RunDir(q)
    raise TuituneError(
        f"no run {str(ref)!r}", fix="pass a run directory or an id from `tuitune runs`"
    )


def read_run_json(run: RunDir) -> dict[str, Any]:
    """run.json, or ``{}`` while it is missing or half-written (another process writes it)."""
    return read_object(run.run_json)


def mark_preparing(run: RunDir, **fields: Any) -> None:
    """Record in ``run.json`` that this process is preparing the run (before any launch):
    if it dies, the folder reads as failed with that reason instead of as nothing."""
    info = read_run_json(run)
    info.update(
        run_id=run.id,
        created=info.get("created", time.time()),
        preparer_pid=os.getpid(),
        preparer_start=proc_start_time(os.getpid()),
        **fields,
    )
    with contextlib.suppress(OSError):
        write_json_atomic(run.run_json, info)


def mark_failed(run: RunDir, message: str) -> None:
    """A launch that failed before the child started: the reason goes into ``run.json``."""
    info = read_run_json(run)
    info.update(run_id=run.id, created=info.get("created", time.time()))
    info["launch_error"] = message.splitlines()[0][:500] if message else "failed before launch"
    info.pop("preparer_pid", None)
    with contextlib.suppress(OSError):
        write_json_atomic(run.run_json, info)


def read_spec(run: RunDir) -> TrainSpec:
    """The run's spec.json as the TrainSpec it trained from (the one reader of that file)."""
    if not run.spec.is_file():
        raise TuituneError(
            "this run has no spec.json: it never started", path=run.root, fix="replay its session"
        )
    return TrainSpec.load(run.spec)
