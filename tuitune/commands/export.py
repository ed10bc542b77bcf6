"""``tuitune export RUN --format ...``: the adapter, a merged model, the run's settings as a
TRL CLI, Axolotl or LLaMA-Factory config, or (core/ship/quantized.py) a 4-/8-bit bitsandbytes save, a
GGUF file via llama.cpp's converter, and a model card. From a session (or a run's session):
a Slurm sbatch script or a SkyPilot task with the plan's spec pinned (core/training/jobs.py)."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a finished run: adapter, merged, 4bit/8bit, gguf, model card, or trainer configs"
FORMATS = ("adapter", "merged", "trl", "axolotl", "llamafactory")
SHIP_FORMATS = ("4bit", "8bit", "gguf", "card")  # tuitune.core.ship.quantized
JOB_FORMATS = ("slurm", "skypilot")  # tuitune.core.training.jobs: from a session


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run", help="run directory or id (see tuitune runs); a session file for slurm/skypilot"
    )
    p.add_argument(
        "--format",
        "-f",
        dest="formats",
        action="append",
        choices=FORMATS + SHIP_FORMATS + JOB_FORMATS,
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
    job = p.add_argument_group("slurm / skypilot jobs (planned for the job's machines)")
    job.add_argument(
        "--gpu", metavar="NAME[xN]", help='GPUs per node, e.g. "A100-80GB x4" (default: this one)'
    )
    job.add_argument("--nodes", type=int, default=1, metavar="N", help="machines (default 1)")
    job.add_argument("--time", default="04:00:00", help="Slurm time limit (default 04:00:00)")
    job.add_argument("--port", type=int, default=29500, help="rendezvous port (default 29500)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuitune.core.runs.rundir import find_run
    from tuitune.core.ship.export import export_run

    formats = args.formats or ["adapter"]
    jobs = [f for f in formats if f in JOB_FORMATS]
    if jobs:
        from tuitune.core.training.jobs import JobRequest, load_job_session, plan_for_job, write_job

        session = load_job_session(args.run)
        req = JobRequest(nodes=args.nodes, gpu=args.gpu or "", time=args.time, port=args.port)
        plan = plan_for_job(session, req)
        for fmt in jobs:
            out = Path(args.out) if args.out else None
            print(write_job(session, fmt, req, out, plan=plan, force=args.force).line())
        formats = [f for f in formats if f not in JOB_FORMATS]
        if not formats:
            return 0
    r = find_run(args.run)
    for fmt in formats:
        out = Path(args.out) if args.out else None
        if fmt in SHIP_FORMATS:
            from tuitune.core.ship.quantized import ship_run

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
