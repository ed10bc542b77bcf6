"""``tuitune attach RUN``: follow a training run, in the wizard's Train screen or as lines.

The run is never owned by the viewer: detaching, closing or killing the viewer leaves it
going; attaching again replays the whole curve from ``RUN/events.jsonl``.
"""

from __future__ import annotations

import argparse
import sys

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
    from tuitune.core.rundir import find_run

    run_dir = find_run(args.run)
    if args.plain:
        return _plain(run_dir, follow=not args.no_follow)
    from tuitune.tui.app import TuituneApp

    return int(TuituneApp(attach=run_dir).run() or 0)


def format_event(e: dict) -> str:
    """One line per event, for logs and pipes."""
    kind = e.get("type", "?")
    if kind == "step":
        parts = [f"step {e.get('step')}", f"loss {_num(e.get('loss'))}"]
        if e.get("learning_rate") is not None:
            parts.append(f"lr {e['learning_rate']:.2e}")
        if e.get("tokens_per_second"):
            parts.append(f"{e['tokens_per_second']:.0f} tok/s")
        if e.get("memory_gib") is not None:
            parts.append(f"mem {e['memory_gib']:.2f} GiB")
        return "  ".join(parts)
    if kind == "eval":
        return f"eval step {e.get('step')}  eval_loss {_num(e.get('eval_loss'))}"
    if kind == "start":
        return f"start {e.get('method')} {e.get('model')} total_steps {e.get('total_steps')}"
    if kind == "progress":
        return f"{e.get('phase')} {e.get('done')}/{e.get('total')}"
    detail = e.get("message") or e.get("reason") or e.get("advice") or e.get("path") or ""
    return f"{kind} {detail}".rstrip()


def _num(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else str(x)


def _plain(run_dir: object, *, follow: bool) -> int:
    from tuitune.core.events import FINAL_TYPES, EventTail

    tail = EventTail(run_dir.events)  # type: ignore[attr-defined]
    final = None
    if follow:
        from tuitune.core.runs import run_state

        def gone() -> bool:
            return run_state(run_dir) not in ("running",)  # type: ignore[arg-type]

        for e in tail.follow(stop=gone):
            print(format_event(e), flush=True)
            if e.get("type") in FINAL_TYPES:
                final = e
    else:
        for e in tail.poll():
            print(format_event(e))
            if e.get("type") in FINAL_TYPES:
                final = e
    if final is None and follow:
        print("the training process is gone without a final event", file=sys.stderr)
        return 1
    return 0 if final is None or final.get("type") == "finished" else 1
