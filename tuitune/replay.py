"""Headless replay: a saved session, run end to end without a terminal UI.

Resolve the model, prepare the data, train in the child process, evaluate base vs tuned,
write ``RUN/report.md`` and print a summary. Output is plain lines when stdout is not a
terminal (CI logs) and a rich table when it is. The session file is only read: the replay's
copy of it goes to ``RUN/session.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tuitune.core.errors import TuituneError
from tuitune.core.rundir import RunDir, new_run_dir
from tuitune.core.session import Session, load_session


@dataclass
class ReplayResult:
    run: RunDir
    final: dict[str, Any]
    report: Path | None
    rows: list[tuple[str, ...]]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs for TrainSpec fields, typed and checked (``spec.parse_set``)."""
    from tuitune.core.spec import parse_set

    return parse_set(items)  # typed and range-checked by the field's declared rule


def check_inputs(session: Session) -> tuple[list[Path], list[Path]]:
    """Every data file the session names must exist: fail before anything heavy starts."""
    train = [session.resolve(p) for p in session.data.train]
    if not train:
        raise TuituneError(
            "missing field 'data.train' (no training files)",
            path=session.path,
            fix="add at least one data file to data.train",
        )
    evals = [session.resolve(p) for p in session.data.eval]
    for p in (*train, *evals):
        if not p.exists():
            raise TuituneError(
                "data file does not exist",
                path=p,
                fix=f"fix the path in {session.path} (relative paths resolve against its folder)",
            )
    for name in ("eval_file", "general_file"):
        value = getattr(session.evaluation, name)
        if value and not session.resolve(value).exists():
            raise TuituneError(
                f"evaluation.{name} does not exist",
                path=session.resolve(value),
                fix=f"fix the path in {session.path}",
            )
    return train, evals


class Printer:
    """Plain progress lines; throttled so CI logs stay readable."""

    def __init__(self, out: TextIO, every_s: float = 5.0) -> None:
        self.out = out
        self.every_s = every_s
        self._last = 0.0
        self.total: int | None = None

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "start":
            self.total = e.get("total_steps")
            self.line(f"train: started pid {e.get('pid')}, {self.total} steps ({e.get('method')})")
        elif kind == "step":
            now = time.monotonic()
            if now - self._last >= self.every_s or e.get("step") == self.total:
                self._last = now
                tps = e.get("tokens_per_second")
                self.line(
                    f"train: step {e.get('step')}/{self.total} loss {_fmt(e.get('loss'))}"
                    + (f" lr {e['learning_rate']:.2e}" if e.get("learning_rate") else "")
                    + (f" {tps:.0f} tok/s" if tps else "")
                )
        elif kind == "eval":
            self.line(f"train: step {e.get('step')} eval_loss {_fmt(e.get('eval_loss'))}")
        elif kind == "progress":
            done, total = e.get("done"), e.get("total")
            if total and (done == total or done == 1):
                self.line(f"{e.get('phase', 'work')}: {done}/{total}")
        elif kind in ("oom", "error", "stopped", "finished", "log"):
            msg = e.get("message") or e.get("reason") or e.get("advice") or ""
            self.line(f"train: {kind} {msg}".rstrip())


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else str(x)


def replay(
    session_path: str | Path,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    stream: TextIO | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    force: bool = False,
    replan: bool = False,
) -> ReplayResult:
    """Run a session end to end; raise TuituneError on bad input or a failed run."""
    from tuitune.core.atomic import write_json_atomic
    from tuitune.core.models import resolve_model

    stream = stream or sys.stdout
    say = Printer(stream)
    session = load_session(session_path)
    check_inputs(session)
    # The plan: validated before any data preparation; a plan that does not fit stops here
    from tuitune.core.plan import check_fit, make_plan

    changes = {**(overrides or {}), **({"seed": seed} if seed is not None else {})}
    plan = make_plan(session, overrides=changes, replan=replan)
    for text in plan.lines():
        say.line(text)
    check_fit(plan, force=force)

    say.line(f"model: resolving {session.model.ref!r}")
    model = resolve_model(session.model.ref)
    say.line(f"model: {model.name} ({model.source}) at {model.path}")

    run = new_run_dir(out)
    say.line(f"run: {run.root}")
    write_json_atomic(run.root / "session.json", session.to_dict())

    from tuitune.core.plan import launch_plan
    from tuitune.core.runs import wait_run

    launched = launch_plan(plan, session, run, model=model, force=force)
    spec, prepared = launched.spec, launched.prepared
    split = prepared.manifest.get("split", {})
    say.line(
        f"data: {prepared.data_format}, {split.get('train_rows')} train / "
        f"{split.get('eval_rows')} validation rows"
    )

    def handle(e: dict[str, Any]) -> None:
        say.event(e)
        if on_event:
            on_event(e)

    final = wait_run(run, on_event=handle)
    if final.get("type") != "finished":
        raise TuituneError(
            f"training {final.get('type')}: {final.get('message') or final.get('reason') or ''}".strip(),
            path=run.log,
            fix="read the log; rerun with --debug for details",
        )

    rows: list[tuple[str, ...]] = []
    report: Path | None = None
    if session.evaluation.task or session.evaluation.eval_file:
        from tuitune.core.launch import evaluate_session_run

        # Base vs tuned for every method, as the wizard evaluates (one core function)
        _results, report, rows = evaluate_session_run(session, run, spec, on_event=handle)
    return ReplayResult(run=run, final=final, report=report, rows=rows)


def print_summary(result: ReplayResult, stream: TextIO | None = None) -> None:
    """The closing table: rich when a terminal is attached, plain lines otherwise."""
    stream = stream or sys.stdout
    header = ("metric", "n", "before", "after", "change")
    if not result.rows:
        pass
    elif stream.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"run {result.run.id}")
        for h in header:
            table.add_column(h, justify="left" if h == "metric" else "right")
        for row in result.rows:
            table.add_row(*map(str, row))
        Console(file=stream).print(table)
    else:
        widths = [max(len(str(r[i])) for r in [header, *result.rows]) for i in range(5)]
        for row in [header, *result.rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip(), file=stream)
    if result.report:
        print(f"report: {result.report}", file=stream)
    print(f"run: {result.run.root}", file=stream)
