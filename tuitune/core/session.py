"""Sessions: every wizard answer in one versioned JSON file, written atomically.

A session is data, never code: it is parsed with ``json`` and validated field by field.
Relative paths inside a session resolve against the session file's directory, so a session
and its data can move together (``assets/sessions/quickstart.json`` uses this).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.atomic import write_json_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.jsonio import from_dict, read_json
from tuitune.core.spec import TrainSpec

SESSION_SCHEMA_VERSION = 1


@dataclass
class ModelChoice:
    """Which base model, as the user named it (resolved to a local directory at run time)."""

    ref: str = "default"
    trust_remote_code: bool = False


@dataclass
class DataChoice:
    """The user's data files and how to curate them."""

    train: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    format: str = "auto"
    val_ratio: float = 0.1
    on_bad_rows: str = "stop"
    curation: dict[str, Any] = field(default_factory=dict)
    # tuitune name -> the file's column, e.g. {"prompt": "question", "completion": "answer"}
    columns: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalChoice:
    """How the run is judged before and after training."""

    task: str = ""
    eval_file: str = ""
    general_file: str = ""
    max_new_tokens: int = 128
    limit: int = 0


@dataclass
class Session:
    """One wizard walk-through, replayable headless."""

    id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    name: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    answers: dict[str, Any] = field(default_factory=dict)
    model: ModelChoice = field(default_factory=ModelChoice)
    data: DataChoice = field(default_factory=DataChoice)
    evaluation: EvalChoice = field(default_factory=EvalChoice)
    spec: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    schema_version: int = SESSION_SCHEMA_VERSION
    path: str = ""  # where it was loaded from; not serialised

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return {"schema_version": d.pop("schema_version"), **d}

    def train_spec(self) -> TrainSpec:
        """The stored spec as a validated TrainSpec (errors name the session file)."""
        return TrainSpec.from_dict(self.spec, source=self.path or "session")

    def resolve(self, p: str) -> Path:
        """Resolve a path stored in the session against the session file's directory."""
        path = Path(p).expanduser()
        if not path.is_absolute() and self.path:
            path = Path(self.path).parent / path
        return path

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (default: the sessions directory, named by id)."""
        target = Path(path) if path else Path(self.path or paths.sessions_dir() / f"{self.id}.json")
        self.updated = time.time()
        write_json_atomic(target, self.to_dict())
        self.path = str(target)
        return target


def load_session(path: str | Path) -> Session:
    """Parse and validate a session file; one-line TuituneError on any problem."""
    path = Path(path)
    data = read_json(
        path,
        what="session file",
        missing_fix="check the path or run `tuitune sessions`",
        invalid_fix="repair the JSON or recreate the session",
    )
    if isinstance(data, dict) and "schema_version" not in data:
        raise TuituneError(
            "missing field 'schema_version'",
            path=path,
            fix=f'add "schema_version": {SESSION_SCHEMA_VERSION}',
        )
    session: Session = from_dict(Session, data, source=path, schema_version=SESSION_SCHEMA_VERSION)
    session.path = str(path)
    if session.spec:
        session.train_spec()  # validate now, so errors surface on load
    return session


def list_sessions() -> list[tuple[Path, Session | TuituneError]]:
    """Every session file in the sessions directory, newest first; broken ones as errors."""
    out: list[tuple[Path, Session | TuituneError]] = []
    directory = paths.sessions_dir()
    if not directory.is_dir():
        return out
    for p in sorted(directory.glob("*.json"), key=lambda q: q.stat().st_mtime, reverse=True):
        try:
            out.append((p, load_session(p)))
        except TuituneError as e:
            out.append((p, e))
    return out


def from_elsewhere(path: str | Path) -> bool:
    """A session file outside the user's sessions directory (the bundled quickstart, a
    colleague's file): it is worked on as a copy, and its trust_remote_code is not taken
    on trust."""
    return Path(path).resolve().parent != paths.sessions_dir().resolve()


def trust_remote_code_line(session: Session, *, confirmed: bool = False) -> str:
    """Say what the session's trust_remote_code means before anything is loaded, and turn it
    off for a session from elsewhere unless the user confirmed it (``confirmed``: the
    replay's ``--set trust_remote_code=true``, the Model screen's switch). Returns the line
    to show ('' when the setting is off and stays off)."""
    if not session.model.trust_remote_code:
        return ""
    if session.path and from_elsewhere(session.path) and not confirmed:
        session.model.trust_remote_code = False
        session.spec.pop("trust_remote_code", None)
        return (
            f"model: trust_remote_code was on in {session.path}, a session from elsewhere: "
            "turned off (confirm with --set trust_remote_code=true to run the model "
            "repository's own Python code)"
        )
    return (
        "model: trust_remote_code is ON: Python code shipped with the model "
        f"{session.model.ref!r} will run on this machine"
    )
