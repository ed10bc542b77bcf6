"""Several machines in one training run: the node layout, its rendezvous, worker folders.

Every machine runs the same command with its own ``--node-rank``; torchrun (CPU) or
``accelerate launch`` (GPUs) joins them. The rendezvous is torch's *static* one: it honours
``--node-rank``, so global rank 0, the one process that writes events, checkpoints' trainer
state and the run directory, is on the machine started with ``--node-rank 0``, where
``attach``, ``stop`` and ``resume`` then work. (The c10d rendezvous ignores ``--node-rank``
and ranks nodes by host name and pid, which would put rank 0 on any of them.)

The other machines train into a *worker* folder, ``BASE/.workers/nodeR-...``: ``run.json``
says ``role: worker``; it holds that node's curated data, log and its own copy of each
checkpoint (``save_on_each_node``), so a resume needs no shared filesystem. ``tuitune runs``
never lists worker folders.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.errors import TuituneError
from tuitune.core.runs.pids import CHILDREN, pid_alive
from tuitune.core.runs.rundir import RunDir, read_run_json

WORKERS_DIR = ".workers"
DEFAULT_PORT = 29500
_ENDPOINT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Nodes:
    """How many machines train together, which one this is, and where rank 0 listens."""

    count: int = 1
    rank: int = 0
    rdzv: str = ""  # HOST:PORT of the --node-rank 0 machine (its rendezvous store)

    @property
    def multi(self) -> bool:
        return self.count > 1

    @property
    def is_worker(self) -> bool:
        return self.rank > 0

    @property
    def host(self) -> str:
        return self.rdzv.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.rdzv.rpartition(":")[2] or DEFAULT_PORT)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": self.count, "node_rank": self.rank, "rdzv": self.rdzv}

    def run_fields(self) -> dict[str, Any]:
        """What ``run.json`` records, so a resume relaunches the same layout."""
        return {**self.to_dict(), "role": "worker" if self.is_worker else "main"}


SINGLE = Nodes()


def parse_nodes(count: int | None, rank: int | None, rdzv: str | None) -> Nodes:
    """Check ``--nodes N --node-rank R --rdzv HOST:PORT`` before any work starts."""
    count = 1 if count is None else count
    rank = 0 if rank is None else rank
    if count < 1:
        raise TuituneError(f"--nodes {count}: needs at least 1", fix="use --nodes 1 or more")
    if not 0 <= rank < count:
        raise TuituneError(
            f"--node-rank {rank} out of range for --nodes {count}",
            fix=f"use a node rank from 0 to {count - 1}, one per machine",
        )
    if count == 1:
        return SINGLE
    rdzv = (rdzv or "").strip()
    m = _ENDPOINT.match(rdzv)
    if not m or not 1 <= int(m.group("port")) <= 65535:
        raise TuituneError(
            f"--rdzv {rdzv!r} is not HOST:PORT" if rdzv else "--nodes > 1 needs --rdzv HOST:PORT",
            fix=f"give the address of the --node-rank 0 machine and a free port, "
            f"e.g. --rdzv 10.0.0.1:{DEFAULT_PORT}",
        )
    return Nodes(count=count, rank=rank, rdzv=rdzv)


def nodes_of(info: dict[str, Any]) -> Nodes:
    """The layout a run was launched with, from its ``run.json`` (one node when absent)."""
    try:
        return Nodes(
            count=int(info.get("nodes", 1)),
            rank=int(info.get("node_rank", 0)),
            rdzv=str(info.get("rdzv", "")),
        )
    except (TypeError, ValueError):
        return SINGLE


def new_worker_dir(out: str | Path | None, nodes: Nodes) -> RunDir:
    """A fresh folder for a worker node, under ``BASE/.workers`` so it is never a run."""
    base = Path(out) if out else paths.runs_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = base / WORKERS_DIR / f"node{nodes.rank}-{stamp}-{uuid.uuid4().hex[:4]}"
    root.mkdir(parents=True, exist_ok=False)
    return RunDir(root)


def multi_node_env() -> bool:
    """In the training child: are ranks on more than one machine? (torchrun's variables)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        return False
    return world > local


def wait_worker(run: RunDir, poll: float = 0.5) -> int | None:
    """Wait until this worker node's launcher exits; its exit code (None if not ours)."""
    info = read_run_json(run)
    pid = info.get("pid")
    child = CHILDREN.pop(pid, None) if pid else None
    if child is not None:
        return child.wait()
    while pid_alive(pid, info.get("pid_start")):
        time.sleep(poll)
    return None


def finish_worker(run: RunDir) -> None:
    """Wait for this worker node's part of the training; TuituneError when it failed."""
    code = wait_worker(run)
    if code:
        raise TuituneError(
            f"this node's training processes ended with exit code {code}",
            path=run.log,
            fix="the run's events are on the --node-rank 0 machine (tuitune attach RUN "
            "there); after fixing, tuitune resume RUN there and tuitune resume "
            f"{run.root} here",
        )
