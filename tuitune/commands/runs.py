"""``tuitune runs``: list training runs with their state (preparing, running, stopped,
finished, failed, killed) and why they ended; ``--prune`` removes the empty ones."""

from __future__ import annotations

import argparse
import time

NAME = "runs"
HELP = "list training runs, their state and why they ended"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="runs directory (default: tuitune's own)")
    p.add_argument("--paths", action="store_true", help="print only the run directories")
    p.add_argument("--json", action="store_true", help="print one JSON list (one object per run)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete run folders that never trained a step (no checkpoint, no model)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from tuitune.core.paths import runs_dir
    from tuitune.core.runs.process import list_runs, prune_runs

    if args.prune:
        removed = prune_runs(args.out)
        if args.json:
            print(json.dumps([r.to_dict() for r in removed]))
        else:
            for r in removed:
                print(f"removed {r.run.root} ({r.state}: {r.reason or 'empty'})")
            print(f"{len(removed)} empty run folder(s) removed")
        return 0
    found = list_runs(args.out)
    if args.json:
        print(json.dumps([r.to_dict() for r in found]))
        return 0
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
        why = f"  {r.reason}" if r.reason and r.state not in ("finished", "running") else ""
        line = f"{r.run.id:<30} {r.state:<9} {r.method:<7} {steps:>9}  {when}  {loss}".rstrip()
        print(line + why)
    return 0
