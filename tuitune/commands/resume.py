"""``tuitune resume RUN``: continue a stopped, failed or orphaned run from its last
complete checkpoint, with the same data order, optimizer and scheduler state."""

from __future__ import annotations

import argparse
import sys

NAME = "resume"
HELP = "continue a stopped or interrupted training run from its last checkpoint"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or id (see tuitune runs)")
    p.add_argument(
        "--detach", action="store_true", help="start it and return (follow with tuitune attach)"
    )
    p.add_argument(
        "--num-processes", type=int, default=None, help="processes (GPUs); default: as before"
    )


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import TuituneError
    from tuitune.core.runs.follow import EventPrinter as Printer
    from tuitune.core.runs.follow import wait_run
    from tuitune.core.runs.process import last_checkpoint, run_state, start_run
    from tuitune.core.runs.rundir import find_run, read_run_json
    from tuitune.core.spec import TrainSpec

    r = find_run(args.run)
    state = run_state(r)
    if state == "finished":
        raise TuituneError("this run has already finished", path=r.root, fix="start a new run")
    spec = TrainSpec.load(r.spec)
    ckpt = last_checkpoint(r)
    nproc = args.num_processes or int(read_run_json(r).get("num_processes", 1))
    pid = start_run(spec, r, resume=True, num_processes=nproc)
    where = ckpt.name if ckpt else "the beginning (no complete checkpoint)"
    print(f"{r.id}: resuming from {where}, pid {pid}")
    if args.detach:
        return 0
    from tuitune.core.runs.nodes import finish_worker, nodes_of

    layout = nodes_of(read_run_json(r))
    if layout.is_worker:  # a worker node: the events are on node 0
        finish_worker(r)
        print(f"{r.id}: this node's part is done; the run is on the --node-rank 0 machine")
        return 0
    if layout.multi:
        print(
            f"{r.id}: waiting at {layout.rdzv} for the other {layout.count - 1} machine(s): "
            "run tuitune resume WORKER_FOLDER on each (the folder their replay printed)"
        )
    final = wait_run(r, on_event=Printer(sys.stdout).event)
    if final.get("type") == "finished":
        print(f"{r.id}: finished, saved to {final.get('adapter_dir') or final.get('model_dir')}")
        return 0
    if final.get("type") == "stopped":  # asked for: not a failure
        print(f"{r.id}: stopped at step {final.get('step')}, resume with tuitune resume {r.root}")
        return 0
    raise TuituneError(
        f"training {final.get('type')}: {final.get('message') or final.get('reason') or ''}".strip(),
        path=r.log,
        fix="read the log",
    )
