"""``tuitune`` / ``tuitune wizard``: the Textual wizard (the default command)."""

from __future__ import annotations

import argparse

NAME = "wizard"
HELP = "open the wizard (the default when no command is given)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--session",
        metavar="FILE",
        help="open this saved session (its steps pre-filled) instead of the Start screen; "
        "a file outside the sessions directory is copied, never written",
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
        from pathlib import Path

        from tuitune.core.paths import sessions_dir
        from tuitune.core.session import load_session

        session = load_session(args.session)
        if Path(args.session).resolve().parent != sessions_dir().resolve():
            # A session file from elsewhere (the bundled quickstart, a colleague's): work on a
            # copy in the sessions directory, never write the user's file.
            from tuitune.tui.defaults import copy_session

            session = copy_session(session)
    from tuitune.tui.app import STEPS, TuituneApp

    step = args.step or ("decide" if session else "start")
    if step not in STEPS:
        raise TuituneError(f"unknown step {step!r}", fix="use one of " + ", ".join(STEPS))
    app = TuituneApp(session, start_step=step)
    return int(app.run() or 0)
