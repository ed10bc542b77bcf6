"""``tuitune sessions``: list saved sessions (broken ones with their one-line error)."""

from __future__ import annotations

import argparse
import time

NAME = "sessions"
HELP = "list saved sessions"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paths", action="store_true", help="print only the file paths")
    p.add_argument("--json", action="store_true", help="print one JSON list")


def run(args: argparse.Namespace) -> int:
    import json

    from tuitune.core.errors import TuituneError
    from tuitune.core.paths import sessions_dir
    from tuitune.core.session import list_sessions

    found = list_sessions()
    if args.json:
        rows = []
        for path, s in found:
            if isinstance(s, TuituneError):
                rows.append({"path": str(path), "error": str(s)})
            else:
                rows.append(
                    {
                        "path": str(path),
                        "id": s.id,
                        "name": s.name,
                        "updated": s.updated,
                        "model": s.model.ref,
                        "trust_remote_code": s.model.trust_remote_code,
                        "method": s.spec.get("method"),
                        "runs": list(s.runs),
                    }
                )
        print(json.dumps(rows))
        return 0
    if not found:
        print(f"no sessions yet in {sessions_dir()}")
        return 0
    for path, s in found:
        if args.paths:
            print(path)
        elif isinstance(s, TuituneError):
            print(f"{path.stem:<28} BROKEN  {s}")
        else:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
            runs = f"{len(s.runs)} run(s)"
            print(f"{s.id:<28} {when}  {s.model.ref:<24} {runs:<9} {s.name}")
    return 0
