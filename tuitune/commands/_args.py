"""Flags shared by replay and plan: ``--set FIELD=VALUE`` and ``--nodes N --node-rank R
--rdzv HOST:PORT``."""

from __future__ import annotations

import argparse


def add_node_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "several machines",
        "run the same command on every machine, each with its own --node-rank; the run, its "
        "events and checkpoints live on --node-rank 0 (attach, stop and resume there)",
    )
    g.add_argument("--nodes", type=int, default=1, metavar="N", help="machines (default 1)")
    g.add_argument("--node-rank", type=int, default=0, metavar="R", help="this machine: 0 to N-1")
    g.add_argument(
        "--rdzv",
        metavar="HOST:PORT",
        help="address of the --node-rank 0 machine and a free port there, e.g. 10.0.0.1:29500",
    )


def add_override_argument(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"override a training-spec field, e.g. --set {example} (repeatable)",
    )
