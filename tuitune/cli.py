"""The ``tuitune`` command: the wizard by default, plus headless subcommands.

Subcommands are discovered from ``tuitune/commands/``: each module defines ``NAME``,
``HELP``, ``configure(parser)`` and ``run(args) -> int``, and imports nothing heavy at module
level, so ``tuitune --help`` stays well under half a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from tuitune import __version__


def _command_modules() -> list[ModuleType]:
    import tuitune.commands as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"tuitune.commands.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuitune",
        description="A terminal wizard from 'should I fine-tune?' to a trained, evaluated, "
        "exported model. With no command, opens the wizard.",
    )
    parser.add_argument("--version", action="version", version=f"tuitune {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
        )
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        from tuitune.commands import wizard

        run = wizard.run
        args = parser.parse_args(["wizard", *(argv if argv is not None else sys.argv[1:])])
    debug = bool(getattr(args, "debug", False)) or os.environ.get("TUITUNE_DEBUG") == "1"
    from tuitune.core.errors import TuituneError

    try:
        return int(run(args) or 0)
    except TuituneError as e:
        if debug:
            raise
        print(f"tuitune: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tuitune: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort: one line, the traceback behind --debug
        if debug:
            raise
        print(
            f"tuitune: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
