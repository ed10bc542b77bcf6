"""``tuitune locate``: print every directory tuitune uses."""

from __future__ import annotations

import argparse

NAME = "locate"
HELP = "print every directory tuitune uses (config, sessions, runs, cache, models, assets)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", help="print only this one (e.g. runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import TuituneError
    from tuitune.core.paths import all_locations

    locs = all_locations()
    if args.what and args.what not in locs:
        raise TuituneError(f"unknown location {args.what!r}", fix=f"one of {', '.join(locs)}")
    if args.json:
        import json

        chosen = {args.what: locs[args.what]} if args.what else locs
        print(json.dumps({k: str(v) for k, v in chosen.items()}))
        return 0
    if args.what:
        print(locs[args.what])
        return 0
    width = max(map(len, locs))
    for name, path in locs.items():
        print(f"{name:<{width}}  {path}")
    return 0
