"""``tuitune export RUN --format ...``: the adapter, a merged model, or the run's settings as
a TRL CLI, Axolotl or LLaMA-Factory config."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a finished run: adapter, merged model, or TRL/Axolotl/LLaMA-Factory config"
FORMATS = ("adapter", "merged", "trl", "axolotl", "llamafactory")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or id (see tuitune runs)")
    p.add_argument(
        "--format",
        "-f",
        dest="formats",
        action="append",
        choices=FORMATS,
        help="what to export (repeatable; default: adapter)",
    )
    p.add_argument("--out", metavar="DIR", help="where to write (default: RUN/exports)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuitune.core.export import export_run
    from tuitune.core.rundir import find_run

    r = find_run(args.run)
    for fmt in args.formats or ["adapter"]:
        out = Path(args.out) if args.out else None
        if out is not None and fmt in ("adapter", "merged"):
            out = out / fmt
        path = export_run(r, fmt, out)
        print(f"{fmt}: {path}")
    return 0
