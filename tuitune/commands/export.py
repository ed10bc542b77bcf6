"""``tuitune export RUN --format ...``: the adapter, a merged model, the run's settings as a
TRL CLI, Axolotl or LLaMA-Factory config, or (core/ship.py) a 4-/8-bit bitsandbytes save, a
GGUF file via llama.cpp's converter, and a model card."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a finished run: adapter, merged, 4bit/8bit, gguf, model card, or trainer configs"
FORMATS = ("adapter", "merged", "trl", "axolotl", "llamafactory")
SHIP_FORMATS = ("4bit", "8bit", "gguf", "card")  # tuitune.core.ship


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or id (see tuitune runs)")
    p.add_argument(
        "--format",
        "-f",
        dest="formats",
        action="append",
        choices=FORMATS + SHIP_FORMATS,
        help="what to export (repeatable; default: adapter)",
    )
    p.add_argument("--out", metavar="DIR", help="where to write (default: RUN/exports)")
    p.add_argument(
        "--gguf-type",
        default="f16",
        choices=("f32", "f16", "bf16", "q8_0", "auto"),
        help="GGUF weight type (default f16; f32 is exact)",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the greedy check of quantized and GGUF exports against the run's model",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an existing output (refused otherwise)"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuitune.core.export import export_run
    from tuitune.core.rundir import find_run

    r = find_run(args.run)
    for fmt in args.formats or ["adapter"]:
        out = Path(args.out) if args.out else None
        if fmt in SHIP_FORMATS:
            from tuitune.core.ship import ship_run

            kw = {} if fmt == "card" else {"verify": not args.no_verify}
            kw["force"] = args.force
            if fmt == "gguf":
                kw["outtype"] = args.gguf_type
            name = {"card": "README.md", "gguf": f"model-{args.gguf_type}.gguf"}.get(
                fmt, f"merged-{fmt}"
            )
            print(ship_run(r, fmt, out / name if out else None, **kw).line())
            continue
        if out is not None and fmt in ("adapter", "merged"):
            out = out / fmt
        path = export_run(r, fmt, out, force=args.force)
        print(f"{fmt}: {path}")
    return 0
