"""``tuitune stop RUN``: ask a training run to checkpoint and stop (resumable). The run's
``stopped`` event says the stop came from ``tuitune stop``; a replay following the run
prints "stopped at step N, resume with tuitune resume RUN" and exits 0."""

from __future__ import annotations

import argparse

NAME = "stop"
HELP = "stop a training run after a checkpoint (tuitune resume continues it)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or id (see tuitune runs)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    p.add_argument(
        "--force", action="store_true", help="kill it if it has not stopped after the wait"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tuitune.core.runs.process import last_checkpoint, stop_run
    from tuitune.core.runs.rundir import find_run

    r = find_run(args.run)
    state = stop_run(r, timeout=args.timeout, force=args.force)
    ckpt = last_checkpoint(r)
    if args.json:
        import json

        print(json.dumps({"run": str(r.root), "state": state, "checkpoint": str(ckpt or "")}))
    else:
        print(f"{r.id}: {state}" + (f", last checkpoint {ckpt.name}" if ckpt else ""))
    return 0 if state != "running" else 1
