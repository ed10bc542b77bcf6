"""Typed, past-tense messages that workers post back to the UI thread.

Workers never touch widgets: they post one of these and a handler on the App or a screen
updates state. Loss points (``EventsLogged``) never collapse; status-style messages may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tuitune.core.runs.rundir import RunDir


@dataclass
class WorkFailed(Message):
    """A background job raised: ``what`` names the job, ``error`` is one line for the user."""

    what: str
    error: str


@dataclass
class ProbeCompleted(Message):
    """The hardware probe, the what-fits table and the recommendation are ready."""

    hardware: Any
    fits: list[Any]
    recommendation: Any


@dataclass
class PlanComputed(Message):
    """``core.training.plan.make_plan`` ran: the plan (None when it refused, ``error`` says why), the
    CPU time estimate (None on a GPU) and what the screen asked for alongside."""

    plan: Any
    timing: Any
    error: str
    extra: dict[str, Any]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PlanComputed)


@dataclass
class ModelChecked(Message):
    """The model reference was resolved (or refused: ``error`` with the fix)."""

    ref: str
    source: str  # default | local | hf-cache | hub | catalogue | ""
    detail: str
    error: str


@dataclass
class DataPrepared(Message):
    """Curation, detection and statistics of the user's files (a preview, not the run's copy)."""

    prepared: Any  # core.data.prepare.PreparedData, None when reading failed
    rows: list[dict[str, Any]]
    stats: Any  # core.data.stats.DataStats


@dataclass
class TemplateRendered(Message):
    """One example through the chat template, with per-token masking."""

    preview: Any


@dataclass
class EstimateUpdated(Message):
    """Memory estimate for the spec being configured."""

    spec: dict[str, Any]
    estimate: Any

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EstimateUpdated)


@dataclass
class RunLaunched(Message):
    """The training child started (or an existing run was attached)."""

    run: RunDir
    attached: bool = False


@dataclass
class LaunchProgress(Message):
    """What the launch is doing (resolving the model, preparing data...)."""

    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LaunchProgress)


@dataclass
class EventsLogged(Message):
    """New events from RUN/events.jsonl, in order. Never collapsed."""

    run: RunDir
    events: list[dict[str, Any]]


@dataclass
class LogTailed(Message):
    """The last lines of RUN/train.log."""

    run: RunDir
    lines: list[str]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogTailed)


@dataclass
class RunEnded(Message):
    """The run reached a final event (finished, stopped, error) or its child vanished."""

    run: RunDir
    final: dict[str, Any]


@dataclass
class EvaluationProgressed(Message):
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EvaluationProgressed)


@dataclass
class EvaluationFinished(Message):
    results: Any
    rows: list[tuple[str, ...]]
    report: Any
    run: Any = None  # the RunDir evaluated (a newer run may be attached by the time it ends)


@dataclass
class ExportFinished(Message):
    what: str
    path: str
