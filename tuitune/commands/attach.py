"""``tuitune attach RUN``: follow a training run, in the wizard's Train screen or as lines.

The run is never owned by the viewer: detaching, closing or killing the viewer leaves it
going; attaching again replays the whole curve from ``RUN/events.jsonl``.
"""

from __future__ import annotations

import argparse

from tuitune.core.runs.events import FINAL_TYPES

NAME = "attach"
HELP = "follow a training run (the Train screen, or --plain lines)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory or run id (see `tuitune runs`)")
    p.add_argument(
        "--plain", action="store_true", help="print events as lines instead of opening the TUI"
    )
    p.add_argument(
        "--no-follow",
        action="store_true",
        help="with --plain: print what is there and return instead of following",
    )


def run(args: argparse.Namespace) -> int:
    from tuitune.core.runs.rundir import find_run

    run_dir = find_run(args.run)
    if args.plain:
        return _plain(run_dir, follow=not args.no_follow)
    from tuitune.tui.app import TuituneApp

    return int(TuituneApp(attach=run_dir).run() or 0)


def _plain(run_dir: object, *, follow: bool) -> int:
    """One line per event (core.runs.follow's formatter), following until the run ends."""
    from tuitune.core.runs.follow import RunFollower, follow_run, format_event

    final = None
    if follow:
        for e in follow_run(run_dir):  # type: ignore[arg-type]
            print(format_event(e), flush=True)
            final = e if e.get("type") in FINAL_TYPES else final
    else:
        follower = RunFollower(run_dir, check_every=0)  # type: ignore[arg-type]
        for e in follower.poll():
            print(format_event(e))
        final = follower.final
    return 0 if final is None or final.get("type") in ("finished", "stopped") else 1
