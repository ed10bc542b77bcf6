"""``tuitune plan SESSION``: the run tuitune would launch, with every choice and why, no training."""

from __future__ import annotations

import argparse

from tuitune.commands._args import add_node_arguments, add_override_argument

NAME = "plan"
HELP = "print the plan for a session (spec, levers, launch, memory, verdict) without training"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", nargs="?", help="session file (e.g. assets/sessions/quickstart.json)")
    p.add_argument(
        "--gpu",
        metavar="NAME[xN]",
        help='plan for GPUs you do not have, from the bundled table, e.g. "A100-80GB x4", T4',
    )
    add_override_argument(p, "method=full")
    p.add_argument(
        "--replan",
        action="store_true",
        help="re-decide micro-batch, accumulation, checkpointing and method for this machine",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    p.add_argument("--list-gpus", action="store_true", help="list the bundled GPU table and exit")
    add_node_arguments(p)


def run(args: argparse.Namespace) -> int:
    import json

    if args.list_gpus:
        from tuitune.core.hardware.gpu_table import GPUS, GiB

        for g in GPUS:
            cc = ".".join(map(str, g.compute_capability))
            print(
                f"{g.key:<10} {g.memory_bytes / GiB:6.1f} GiB  cc {cc}  "
                f"bf16 {'yes' if g.bf16 else 'no ':<3}  {g.tflops_16bit:6.0f} TFLOP/s  {g.name}"
            )
        return 0
    from tuitune.core.runs.nodes import DEFAULT_PORT, parse_nodes

    if not args.session:
        from tuitune.core.errors import TuituneError

        raise TuituneError("no session given", fix="tuitune plan SESSION (or --list-gpus)")
    from tuitune.core.session import load_session
    from tuitune.core.spec import parse_set
    from tuitune.core.training.plan import make_plan

    overrides = parse_set(args.overrides)
    session = load_session(args.session)
    # A plan needs no rendezvous yet: its launch line shows where node 0's address goes.
    nodes = parse_nodes(args.nodes, args.node_rank, args.rdzv or f"NODE0:{DEFAULT_PORT}")
    plan = make_plan(session, gpu=args.gpu, overrides=overrides, replan=args.replan, nodes=nodes)
    if args.json:
        print(json.dumps(plan.to_dict(), default=str))
    else:
        print("\n".join(plan.lines()))
    return 0
