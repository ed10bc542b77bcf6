"""``tuitune runs``: list training runs with their state (running, stopped, finished,
failed, orphaned)."""

from __future__ import annotations

import argparse
import time

NAME = "runs"
HELP = "list training runs and their state"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="runs directory (default: tuitune's own)")
    p.add_argument("--paths", action="store_true", help="print only the run directories")


def run(args: argparse.Namespace) -> int:
    from tuitune.core.paths import runs_dir
    from tuitune.core.runs import list_runs

    found = list_runs(args.out)
    if not found:
        print(f"no runs yet in {args.out or runs_dir()}")
        return 0
    for r in found:
        if args.paths:
            print(r.run.root)
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        steps = f"{r.step if r.step is not None else '-'}/{r.total_steps or '?'}"
        loss = f"loss {r.last_loss:.4f}" if r.last_loss is not None else ""
        print(f"{r.run.id:<30} {r.state:<9} {r.method:<7} {steps:>9}  {when}  {loss}".rstrip())
    return 0
