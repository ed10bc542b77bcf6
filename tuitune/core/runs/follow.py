"""Following a run: one watcher of ``RUN/events.jsonl`` and one plain-line formatter.

``attach --plain``, the replay, ``resume`` and the wizard's App all follow a run through
``RunFollower`` (or the ``follow_run`` generator over it) and print through
``format_event`` / ``EventPrinter``, so they agree on when a run has ended and on how each
event reads. The follower only reads files: viewers come and go, the child never notices.
A child that vanished without a final event is recorded as ``killed`` by whichever
follower notices first (``core.runs.process.record_killed``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tuitune.core.runs.events import FINAL_TYPES, parse_line
from tuitune.core.runs.pids import pid_alive, reap
from tuitune.core.runs.process import record_killed
from tuitune.core.runs.rundir import RunDir, read_run_json


class RunFollower:
    """Incremental reader of one run: ``poll()`` returns the events appended since the last
    call and sets ``final`` once the latest launch has ended (or its child is gone).

    ``from_start`` replays every launch's events (the whole curve across stop and resume);
    otherwise reading starts at the latest launch. Only a final event of the latest launch
    ends the follow, so an earlier ``stopped`` followed by a resume does not.
    """

    def __init__(self, run: RunDir, *, from_start: bool = True, check_every: float = 1.0):
        self.run = run
        info = read_run_json(run)
        self.launch_offset = int(info.get("events_offset", 0))
        self.offset = 0 if from_start else self.launch_offset
        self.final: dict[str, Any] | None = None
        self.check_every = check_every
        self._last_check = time.monotonic()

    def _read(self) -> list[tuple[int, dict[str, Any]]]:
        try:
            with open(self.run.events, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        out, pos = [], self.offset
        for raw in chunk[:end].split(b"\n")[:-1] if end else []:
            e = parse_line(raw.decode("utf-8", errors="replace"))
            if e is not None:
                out.append((pos, e))
            pos += len(raw) + 1
        self.offset += end
        return out

    def _take(self, found: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        events = []
        for pos, e in found:
            events.append(e)
            if e.get("type") in FINAL_TYPES and pos >= self.launch_offset:
                self.final = e
                break
        return events

    def poll(self, *, force_check: bool = False) -> list[dict[str, Any]]:
        """New events; notices the child's end every ``check_every`` seconds."""
        if self.final is not None:
            return []
        events = self._take(self._read())
        if self.final is not None:
            return events
        now = time.monotonic()
        if force_check or now - self._last_check >= self.check_every:
            self._last_check = now
            events += self._check_alive()
        return events

    def _check_alive(self) -> list[dict[str, Any]]:
        info = read_run_json(self.run)
        offset = int(info.get("events_offset", 0))
        if offset > self.launch_offset:  # a resume started a new launch meanwhile
            self.launch_offset = offset
        pid = info.get("pid")
        if not pid:
            if not info:
                return []  # no run.json (an in-process run, a copied folder): cannot tell
            if not info.get("launch_error") and pid_alive(
                info.get("preparer_pid"), info.get("preparer_start")
            ):
                return []  # still preparing the data: the launch is coming
            why = info.get("launch_error") or "this run was never launched (no training process)"
            self.final = {"v": 1, "type": "error", "kind": "not-launched", "message": why}
            return [self.final]
        if pid_alive(pid, info.get("pid_start")):
            return []
        late = self._take(self._read())  # the final event is written before the exit
        if self.final is not None:
            return late
        killed = record_killed(self.run, reap(pid))
        recorded = self._take(self._read())
        if self.final is None:  # a read-only run directory: the event was not written
            self.final = killed
            recorded.append(killed)
        return late + recorded


def follow_run(
    run: RunDir,
    *,
    from_start: bool = True,
    poll: float = 0.25,
    stop: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a run's events as they arrive until its latest launch ends (the last event
    yielded is then its final one), ``stop()`` is true, or ``timeout`` seconds pass
    (TimeoutError)."""
    follower = RunFollower(run, from_start=from_start)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        yield from follower.poll()
        if follower.final is not None:
            return
        if stop is not None and stop():
            return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run.id} still running after {timeout} s")
        time.sleep(poll)


def _num(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else str(x)


def format_event(e: dict[str, Any], total: int | None = None) -> str:
    """One plain line per event, for logs, pipes and CI."""
    kind = e.get("type", "?")
    if kind == "step":
        where = f"step {e.get('step')}" + (f"/{total}" if total else "")
        parts = [where, f"loss {_num(e.get('loss'))}"]
        if e.get("learning_rate") is not None:
            parts.append(f"lr {e['learning_rate']:.2e}")
        if e.get("tokens_per_second"):
            parts.append(f"{e['tokens_per_second']:.0f} tok/s")
        if e.get("memory_gib") is not None:
            parts.append(f"mem {e['memory_gib']:.2f} GiB")
        return "  ".join(parts)
    if kind == "eval":
        return f"eval step {e.get('step')}  eval_loss {_num(e.get('eval_loss'))}"
    if kind == "start":
        line = f"start {e.get('method')} {e.get('model')} total_steps {e.get('total_steps')}"
        if e.get("start_step"):
            line += f" (resumed at step {e['start_step']})"
        return line
    if kind == "progress":
        what = f" {e['what']}" if e.get("what") and e.get("what") != "done" else ""
        return f"{e.get('phase')} {e.get('done')}/{e.get('total')}{what}"
    if kind == "oom":
        line = f"oom at step {e.get('step')}, micro-batch {e.get('micro_batch')}"
        if e.get("retry"):
            line += (
                f": retrying with micro-batch {e.get('new_micro_batch')} x accumulation "
                f"{e.get('new_gradient_accumulation_steps')} from "
                f"{e.get('resume_from') or 'the start'}"
            )
        return f"{line}; {e.get('advice', '')}".rstrip("; ")
    if kind == "stopped":
        ckpt = e.get("checkpoint")
        where = f", checkpoint {str(ckpt).rsplit('/', 1)[-1]}" if ckpt else ", no checkpoint"
        by = f" by {e['by']}" if e.get("by") else ""
        return f"stopped at step {e.get('step')}{by}{where}: {e.get('reason') or ''}".rstrip(": ")
    if kind == "error":
        line = f"error {e.get('message') or ''}".rstrip()
        return line + (f" (fix: {e['fix']})" if e.get("fix") else "")
    if kind == "finished":
        out = e.get("adapter_dir") or e.get("model_dir") or ""
        return f"finished at step {e.get('step')}" + (f", saved to {out}" if out else "")
    detail = e.get("message") or e.get("reason") or e.get("advice") or e.get("path") or ""
    return f"{kind} {detail}".rstrip()


class EventPrinter:
    """Plain progress lines with a prefix per phase; step lines throttled to one every
    ``every_s`` seconds (0: every event) so CI logs stay readable."""

    def __init__(self, out: TextIO, every_s: float = 5.0, prefix: str = "train: ") -> None:
        self.out = out
        self.every_s = every_s
        self.prefix = prefix
        self.total: int | None = None
        self._last_step = 0.0
        self._last_line = time.monotonic()
        self._progress = ""
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.out, flush=True)
            self._last_line = time.monotonic()

    def event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "start":
            self.total = e.get("total_steps")
        elif kind == "step":
            now = time.monotonic()
            if now - self._last_step < self.every_s and e.get("step") != self.total:
                return
            self._last_step = now
        elif kind == "progress":
            done, total = e.get("done"), e.get("total")
            self._progress = f"{done}/{total}" if total else str(e.get("what") or "")
            due = time.monotonic() - self._last_line >= min(self.every_s, 10.0)
            if not total or not (done == 1 or done == total or due):
                return
            self.line(format_event(e))
            return
        elif kind == "checkpoint" and self.every_s:
            return
        self.line(self.prefix + format_event(e, self.total))

    @contextlib.contextmanager
    def heartbeat(self, what: str, every_s: float = 10.0) -> Iterator[None]:
        """While the block runs, print ``what: still working (N s)`` whenever nothing was
        printed for ``every_s`` seconds: a long evaluation never looks hung in a CI log."""
        done = threading.Event()
        t0 = time.monotonic()

        def beat() -> None:
            while not done.wait(1.0):
                if time.monotonic() - self._last_line >= every_s:
                    at = f" at {self._progress}" if self._progress else ""
                    self.line(f"{what}: still working{at} ({time.monotonic() - t0:.0f} s)")

        thread = threading.Thread(target=beat, name="tuitune-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(2.0)


def wait_run(
    run: RunDir,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    poll: float = 0.25,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Follow the latest launch of ``run`` until its final event; return that event.

    When the child vanishes without one (killed, crashed hard), records and returns an
    ``error`` event of ``kind: "killed"`` with the tail of ``train.log`` (see
    ``record_killed``). Raises TimeoutError after ``timeout`` seconds.
    """
    final: dict[str, Any] = {}
    for e in follow_run(run, from_start=False, poll=poll, timeout=timeout):
        if on_event is not None:
            on_event(e)
        final = e
    reap(read_run_json(run).get("pid"))
    return final
