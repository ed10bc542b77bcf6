"""``tuitune replay SESSION``: run a saved session headless, for scripts and CI."""

from __future__ import annotations

import argparse

from tuitune.commands._args import add_node_arguments, add_override_argument

NAME = "replay"
HELP = "run a saved session headless: prepare data, train, evaluate, report"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", help="session file (e.g. assets/sessions/quickstart.json)")
    p.add_argument("--out", help="directory for the run (default: the runs directory)")
    p.add_argument("--seed", type=int, help="override the session's seed")
    add_override_argument(p, "max_steps=20")
    p.add_argument(
        "--force",
        action="store_true",
        help="launch even when the plan's memory estimate says it does not fit",
    )
    p.add_argument(
        "--replan",
        action="store_true",
        help="re-decide micro-batch, accumulation, checkpointing and method for this machine",
    )
    add_node_arguments(p)


def run(args: argparse.Namespace) -> int:
    from tuitune.core.runs.nodes import parse_nodes
    from tuitune.replay import parse_overrides, print_summary, replay

    nodes = parse_nodes(args.nodes, args.node_rank, args.rdzv)
    result = replay(
        args.session,
        out=args.out,
        seed=args.seed,
        overrides=parse_overrides(args.overrides),
        nodes=nodes,
        force=args.force,
        replan=args.replan,
    )
    print_summary(result)
    return 0
