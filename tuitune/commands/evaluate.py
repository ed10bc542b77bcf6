"""``tuitune evaluate RUN``: score a finished or stopped run base vs tuned, with the
replay's evaluation, from the run's own session and spec (a stopped run: its last
checkpoint). Writes RUN/eval/results.json and RUN/report.md; ``tuitune compare`` reads them.
"""

from __future__ import annotations

import argparse
import sys

NAME = "evaluate"
HELP = "evaluate a finished or stopped run (base vs tuned) and write its report"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory or id (see tuitune runs)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (progress goes to stderr)"
    )


def run(args: argparse.Namespace) -> int:
    import json

    from tuitune.core.runs.follow import EventPrinter
    from tuitune.core.runs.rundir import find_run
    from tuitune.core.training.evaluate_run import evaluate_run

    r = find_run(args.run)
    say = EventPrinter(sys.stderr if args.json else sys.stdout, every_s=10.0, prefix="")
    say.line(f"evaluate: {r.id}")
    with say.heartbeat("eval"):
        done = evaluate_run(r, on_event=say.event)
    if args.json:
        print(json.dumps(done.to_dict()))
        return 0
    if done.step is not None:
        print(f"scored the last checkpoint (step {done.step}): {done.tuned}")
    from tuitune.replay import ReplayResult, print_summary

    print_summary(ReplayResult(run=r, final={}, report=done.report, rows=done.rows))
    return 0
