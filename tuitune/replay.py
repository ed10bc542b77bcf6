"""Headless replay: a saved session, run end to end without a terminal UI.

Resolve the model, prepare the data, train in the child process, evaluate base vs tuned,
write ``RUN/report.md`` and print a summary. Output is plain lines when stdout is not a
terminal (CI logs) and a rich table when it is. The session file is only read: the replay's
copy of it goes to ``RUN/session.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tuitune.core.errors import TuituneError
from tuitune.core.models.resolve import resolve_model
from tuitune.core.runs.follow import EventPrinter, wait_run
from tuitune.core.runs.nodes import SINGLE, Nodes, finish_worker, new_worker_dir
from tuitune.core.runs.process import final_reason
from tuitune.core.runs.rundir import RunDir, new_run_dir
from tuitune.core.runs.session_of import save_run_session
from tuitune.core.runs.tracking import where_it_goes
from tuitune.core.session import Session, load_session, trust_remote_code_line
from tuitune.core.spec import parse_set
from tuitune.core.training.launch import evaluate_session_run
from tuitune.core.training.plan import NO_TOKENIZER, check_fit, launch_plan, make_plan


@dataclass
class ReplayResult:
    run: RunDir
    final: dict[str, Any]
    report: Path | None
    rows: list[tuple[str, ...]]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs for TrainSpec fields, typed and checked (``spec.parse_set``)."""
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


# The replay's progress lines come from the one follower/formatter (core.runs.follow).
Printer = EventPrinter


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
    nodes: Nodes = SINGLE,
    num_processes: int | None = None,
) -> ReplayResult:
    """Run a session end to end; raise TuituneError on bad input or a failed run.

    ``nodes``: this machine's part of a several-machine run (``--nodes --node-rank
    --rdzv``). The ``--node-rank 0`` machine holds the run and evaluates it; the others train
    into a worker folder and return when their part of the training ends.
    """
    stream = stream or sys.stdout
    say = Printer(stream)
    session = load_session(session_path)
    # shown (and, for a session from elsewhere, turned off unless confirmed) before any load
    confirmed = bool((overrides or {}).get("trust_remote_code"))
    session.model.trust_remote_code = session.model.trust_remote_code or confirmed
    if trust := trust_remote_code_line(session, confirmed=confirmed):
        say.line(trust)
    check_inputs(session)
    # The plan: validated before any data preparation; a plan that does not fit stops here

    changes = {**(overrides or {}), **({"seed": seed} if seed is not None else {})}
    plan = make_plan(
        session, overrides=changes, replan=replan, num_processes=num_processes, nodes=nodes
    )
    for text in plan.lines():
        say.line(text)
    check_fit(plan, force=force)

    say.line(f"model: resolving {session.model.ref!r}")
    model = resolve_model(session.model.ref)
    say.line(f"model: {model.name} ({model.source}) at {model.path}")
    if any(n.startswith(NO_TOKENIZER) for n in plan.notes):
        # The model was not on disk when planning (the default's first conversion): plan again
        # with its tokenizer, so a fresh machine launches what every later replay does.
        plan = make_plan(
            session, overrides=changes, replan=replan, num_processes=num_processes, nodes=nodes
        )
        say.line("plan: again, now with the data measured by the model's tokenizer")
        for text in plan.lines():
            say.line(text)
        check_fit(plan, force=force)

    if nodes.is_worker:
        run = new_worker_dir(out, nodes)
        say.line(f"worker: node {nodes.rank} of {nodes.count}, folder {run.root}")
    else:
        run = new_run_dir(out)
        say.line(f"run: {run.root}")
        save_run_session(run, session)

    for name in plan.spec.report_to:  # where the metrics go, before anything is sent
        say.line(f"tracking: {where_it_goes(name, run)}")
    launched = launch_plan(plan, session, run, model=model, force=force, nodes=nodes)
    nproc = plan.launch.num_processes
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

    if nodes.multi:
        say.line(
            f"nodes: {nodes.count} machines x {nproc} process(es), rank 0 at {nodes.rdzv}"
            + ("" if nodes.is_worker else "; waiting for the other nodes to join")
        )
    if nodes.is_worker:
        finish_worker(run)
        say.line(f"worker: node {nodes.rank} done; the run and its report are on node 0")
        return ReplayResult(run=run, final={"type": "finished"}, report=None, rows=[])
    final = wait_run(run, on_event=handle)
    if final.get("type") == "stopped":  # a stop someone asked for is not a failure
        say.line(
            f"stopped at step {final.get('step')}, resume with tuitune resume {run.root}"
            + (f" ({final_reason(final)})" if final_reason(final) else "")
        )
        return ReplayResult(run=run, final=final, report=None, rows=[])
    if final.get("type") != "finished":
        raise TuituneError(
            f"training {'was killed' if final.get('kind') == 'killed' else 'failed'}: "
            f"{final_reason(final)}",
            path=run.log,
            fix=final.get("fix") or "read the log; rerun with --debug for details",
        )

    rows: list[tuple[str, ...]] = []
    report: Path | None = None
    if session.evaluation.task or session.evaluation.eval_file:
        # Base vs tuned for every method, as the wizard evaluates (one core function)
        with say.heartbeat("eval"):  # a line at least every 10 s, also in CI logs
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
