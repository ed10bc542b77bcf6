"""``tuitune compare RUN...``: the evaluation figures of several runs side by side."""

from __future__ import annotations

import argparse
import sys

NAME = "compare"
HELP = "put the before/after evaluation of several runs side by side"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or run ids")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _load(run_dir):  # noqa: ANN001, ANN202 - RunDir -> EvalResults
    from tuitune.core.errors import TuituneError
    from tuitune.core.evaluation.scoring import EvalResults

    path = run_dir.eval / "results.json"
    if not path.is_file():
        raise TuituneError(
            "no evaluation results",
            path=path,
            fix=f"tuitune evaluate {run_dir.root} (scores a finished or stopped run)",
        )
    return EvalResults.load(path)


def run(args: argparse.Namespace) -> int:
    from tuitune.core.evaluation.report import compare_rows
    from tuitune.core.runs.rundir import find_run

    loaded = []
    for ref in args.runs:
        run_dir = find_run(ref)
        loaded.append((run_dir.id, _load(run_dir)))
    header, rows = compare_rows(loaded)
    if args.json:
        import dataclasses
        import json

        out = {
            "header": header,
            "rows": [dict(zip(header, row)) for row in rows],
            "runs": {
                name: {
                    "comparisons": [
                        {**dataclasses.asdict(c), "verdict": c.verdict} for c in res.comparisons
                    ],
                    "warnings": list(res.warnings),
                }
                for name, res in loaded
            },
        }
        print(json.dumps(out, default=str))
        return 0
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="runs compared (after, change vs base, verdict)")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    for name, res in loaded:
        for w in res.warnings:
            print(f"{name}: warning: {w}")
    return 0
