"""``tuitune`` / ``tuitune wizard``: the Textual wizard (the default command)."""

from __future__ import annotations

import argparse

NAME = "wizard"
HELP = "open the wizard (the default when no command is given)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--session",
        metavar="FILE",
        help="open this saved session (its steps pre-filled) instead of the Start screen",
    )
    p.add_argument(
        "--step",
        metavar="STEP",
        default=None,
        help="step to open at (start, decide, hardware, model, data, template, configure, "
        "train, evaluate); with --session the default is decide",
    )


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import TuituneError

    session = None
    if args.session:
        from tuitune.core.session import load_session

        session = load_session(args.session)
    from tuitune.tui.app import STEPS, TuituneApp

    step = args.step or ("decide" if session else "start")
    if step not in STEPS:
        raise TuituneError(f"unknown step {step!r}", fix="use one of " + ", ".join(STEPS))
    app = TuituneApp(session, start_step=step)
    return int(app.run() or 0)
