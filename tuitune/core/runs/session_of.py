"""A run's own session: the copy stored in ``RUN/session.json``, with its paths made
absolute, so that evaluating, attaching to or resuming a run later never falls back on a
default session (the Start screen's attach on a DPO run once opened the quickstart's).

Order of lookup: the saved session whose ``runs`` lists the run (the wizard's runs, and a
copy already opened once); else ``RUN/session.json``; else a session rebuilt from
``RUN/spec.json`` (model and spec only).
"""

from __future__ import annotations

from pathlib import Path

from tuitune.core.atomic import write_json_atomic
from tuitune.core.data.mixture import with_resolved_mix_file
from tuitune.core.errors import TuituneError
from tuitune.core.runs.rundir import RunDir, mark_preparing, read_run_json
from tuitune.core.session import ModelChoice, Session, list_sessions, load_session
from tuitune.core.spec import TrainSpec

RUN_SESSION = "session.json"


def absolute_paths(session: Session, base: Path) -> Session:
    """Rewrite the session's relative data and evaluation paths against ``base`` (the folder
    of the file they were written in), so the copy works from any folder."""

    def fix(p: str) -> str:
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    session.data.train = [fix(p) for p in session.data.train]
    session.data.eval = [fix(p) for p in session.data.eval]
    for name in ("eval_file", "general_file"):
        value = getattr(session.evaluation, name)
        if value:
            setattr(session.evaluation, name, fix(value))
    session.data.curation = with_resolved_mix_file(session.data.curation, base) or {}
    return session


def save_run_session(run: RunDir, session: Session) -> None:
    """Store the session the run was started from in ``RUN/session.json`` (paths absolute)."""
    import copy as _copy

    base = Path(session.path).resolve().parent if session.path else Path.cwd()
    data = absolute_paths(_copy.deepcopy(session), base).to_dict()
    write_json_atomic(run.root / RUN_SESSION, data)
    if session.path:
        mark_preparing(run, session_path=str(Path(session.path).resolve()))


def run_session(run: RunDir) -> Session:
    """The run's own session (see the module docstring). Its ``path`` is empty for a copy
    read from the run folder, so saving it writes a session file of its own instead of
    writing into the run."""
    root = str(run.root.resolve())
    for _path, s in list_sessions():
        if isinstance(s, Session) and any(str(Path(r).resolve()) == root for r in s.runs):
            return s
    stored = run.root / RUN_SESSION
    if stored.is_file():
        session = load_session(stored)
        absolute_paths(session, _origin(run) or run.root)
        session.path = ""
        if str(run.root) not in session.runs:
            session.runs.append(str(run.root))
        return session
    return _from_spec(run)


def _origin(run: RunDir) -> Path | None:
    """The folder of the session file the run was started from, when run.json names it."""
    p = read_run_json(run).get("session_path")
    return Path(p).parent if p and Path(p).parent.is_dir() else None


def _from_spec(run: RunDir) -> Session:
    """A session for a run that kept none: its model and spec, nothing made up."""
    if not run.spec.is_file():
        raise TuituneError(
            "this run has neither a session nor a spec",
            path=run.root,
            fix="open its session with tuitune (or replay it again)",
        )
    spec = TrainSpec.load(run.spec)
    keep = {
        k: v
        for k, v in spec.to_dict().items()
        if k not in ("model", "train_file", "eval_file", "output_dir", "schema_version")
    }
    return Session(
        name=f"from run {run.id}",
        model=ModelChoice(ref=spec.model, trust_remote_code=spec.trust_remote_code),
        spec=keep,
        runs=[str(run.root)],
    )
