"""``tuitune`` / ``tuitune wizard``: the Textual wizard (the default command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tuitune.tui.steps import NEEDS, STEPS

NAME = "wizard"
HELP = "open the wizard (the default when no command is given)"

# Steps that read what an earlier step produced, and which step produces it.


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
        help=f"step to open at ({', '.join(STEPS)}); with --session the default is decide. "
        "A step whose inputs are "
        "missing (data for template/configure/train, a finished run for evaluate) is refused",
    )


def missing_inputs(session: Any, step: str) -> str | None:
    """Why ``step`` cannot open on this session, with the step to take instead; None if it can."""
    if NEEDS[step] == "data":
        files = [session.resolve(p) for p in session.data.train]
        if not files:
            return f"the {step} step needs training data and the session has none"
        absent = [str(p) for p in files if not p.exists()]
        if absent:
            return f"the {step} step needs the session's data, and {absent[0]} does not exist"
    if NEEDS[step] == "run" and finished_run(session) is None:
        return "the evaluate step needs a finished run and the session has none"
    return None


def finished_run(session: Any) -> Any:
    """The session's newest finished run, or None."""
    from tuitune.core.runs.process import run_state
    from tuitune.core.runs.rundir import RunDir

    for root in reversed(session.runs):
        run = RunDir(Path(session.resolve(root)))
        try:
            if run.root.is_dir() and run_state(run) == "finished":
                return run
        except Exception:  # noqa: BLE001 - a broken run directory is not a finished run
            continue
    return None


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import TuituneError
    from tuitune.tui.keymap import load_keymap

    keymap = load_keymap()  # a broken config file is refused before anything opens
    session = None
    if args.session:
        from tuitune.core.paths import sessions_dir
        from tuitune.core.session import load_session

        session = load_session(args.session)
        if Path(args.session).resolve().parent != sessions_dir().resolve():
            # A session file from elsewhere (the bundled quickstart, a colleague's): work on a
            # copy in the sessions directory, never write the user's file.
            from tuitune.tui.defaults import copy_session

            session = copy_session(session)
    from tuitune.tui.app import TuituneApp

    step = args.step or ("decide" if session else "start")
    if step not in STEPS:
        raise TuituneError(f"unknown step {step!r}", fix="use one of " + ", ".join(STEPS))
    attach = None
    if NEEDS[step]:
        from tuitune.tui.defaults import new_session

        check = session or new_session()
        why = missing_inputs(check, step)
        if why:
            earlier = "train" if step == "evaluate" else "data"
            raise TuituneError(
                why, fix=f"open an earlier step (--step {earlier}) or a session that has it"
            )
        if step == "evaluate":
            attach = finished_run(check)
    app = TuituneApp(session, start_step=step, attach=attach, keymap=keymap)
    code = int(app.run() or 0)
    for line in app.finish_lines:
        print(line)
    return code
