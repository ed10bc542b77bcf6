"""The run event protocol: one JSON object per line in ``RUN/events.jsonl``.

The training child appends and flushes one line per event; viewers (the TUI, ``tuitune
attach``, the replay) only read the file, so any number of them can come and go.

Every event has ``v`` (protocol version), ``type`` and ``time`` (unix seconds). Types:

- ``start``: run_id, method, model, pid, total_steps, spec (dict)
- ``step``: step, epoch, loss, learning_rate, grad_norm, tokens_per_second, tokens_seen,
  memory_gib (peak reserved on GPU, RSS on CPU), gpu_util (or null)
- ``eval``: step, eval_loss (and any other ``eval_*`` metric)
- ``checkpoint``: step, path, bytes (its size on disk)
- ``oom``: step, message, micro_batch, gradient_accumulation_steps, advice (the memory
  checklist), retry (bool), new_micro_batch, new_gradient_accumulation_steps, resume_from
  (the checkpoint it continues from), why_not (when it does not retry)
- ``error``: message (the exception's one line), step, fix, traceback_tail; ``kind`` is
  ``disk`` (a full disk: free_bytes), ``oom``, or ``killed`` (the child vanished without a
  final event; written by the first viewer that noticed, see core.runs.process.record_killed)
- ``stopped``: step, checkpoint (the last complete one, or null), by (who asked: "tuitune
  stop", "the wizard", "Ctrl-C", "the free-space check"), reason; ``kind: "disk"`` with
  free_bytes and checkpoint_bytes when the next checkpoint would not have fitted
- ``finished``: step, adapter_dir (or model_dir), train_runtime, micro_batch,
  gradient_accumulation_steps (the batch it ended with, after any OOM retry)
- ``progress``: phase, done, total (long non-training work such as evaluation)
- ``log``: message
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS_VERSION = 1
EVENTS_FILE = "events.jsonl"
FINAL_TYPES = frozenset({"finished", "stopped", "error"})


class EventWriter:
    """Appends events to a JSONL file, one ``write`` + flush + fsync per event."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived

    def emit(self, type: str, **data: Any) -> dict[str, Any]:
        event = {"v": EVENTS_VERSION, "type": type, "time": round(time.time(), 3), **data}
        self._f.write(json.dumps(event, default=str) + "\n")
        self._f.flush()
        with contextlib.suppress(OSError):
            os.fsync(self._f.fileno())
        return event

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_line(line: str) -> dict[str, Any] | None:
    """Parse one event line; None for a blank or torn (half-written) line."""
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "type" in event else None


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events in the file (a missing file is an empty run)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [e for line in f if (e := parse_line(line)) is not None]
    except FileNotFoundError:
        return []


class EventTail:
    """Incremental reader: ``poll()`` returns the events appended since the last call.

    Keeps a partial last line until its newline arrives, so a line being written is never
    parsed half-way.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = ""

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        return [e for line in lines if (e := parse_line(line)) is not None]

    def follow(self, interval: float = 0.25, stop: Any = None) -> Iterator[dict[str, Any]]:
        """Yield events as they arrive until a final event (or ``stop()`` returns True)."""
        while True:
            events = self.poll()
            yield from events
            if any(e["type"] in FINAL_TYPES for e in events):
                return
            if stop is not None and stop():
                yield from self.poll()
                return
            time.sleep(interval)


@dataclass
class RunCurves:
    """Loss curves and latest figures folded from events; what plots and summaries show."""

    train_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    total_steps: int | None = None
    last_step: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] | None = None
    started: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "start":  # a resume: the run is going again
            self.started = event
            self.total_steps = event.get("total_steps")
            self.final = None
        elif kind == "step" and event.get("loss") is not None:
            step = int(event["step"])
            # A resumed run replays from its checkpoint: drop points past the resume step.
            while self.train_steps and self.train_steps[-1] >= step:
                self.train_steps.pop()
                self.train_loss.pop()
            self.train_steps.append(step)
            self.train_loss.append(float(event["loss"]))
            self.last_step = event
        elif kind == "eval" and event.get("eval_loss") is not None:
            step = int(event["step"])
            while self.eval_steps and self.eval_steps[-1] >= step:
                self.eval_steps.pop()
                self.eval_loss.pop()
            self.eval_steps.append(step)
            self.eval_loss.append(float(event["eval_loss"]))
        elif kind in FINAL_TYPES:
            self.final = event

    def extend(self, events: list[dict[str, Any]]) -> RunCurves:
        for e in events:
            self.add(e)
        return self
