"""Scheduler jobs from a session: a Slurm ``sbatch`` script and a SkyPilot task YAML.

A job trains exactly what the plan showed. The plan is made for the job's machines
(``--gpu "A100-80GB x4" --nodes 2``, or this machine) and its spec is pinned into a copy of
the session written beside the job: every planned field stated as the user's, so no node
re-decides anything, with accumulation given as the one-process total that the replay's plan
divides back across the same processes. Each node then runs ``tuitune replay COPY --nodes N
--node-rank R --rdzv HEAD:PORT``, which starts torchrun or ``accelerate launch`` there
(``tuitune.core.runs.nodes``): the rendezvous comes from the allocation (Slurm's first host,
SkyPilot's first node IP), node rank 0 is the head and holds the run.

Slurm: every node sees the same filesystem (the usual cluster), so paths are absolute.
SkyPilot: the tuitune checkout is the ``workdir``, its ``scripts/install.sh`` the ``setup``;
the pinned session, its data files and a local model folder travel as ``file_mounts``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune import __version__
from tuitune.core import paths
from tuitune.core.atomic import refuse_existing, write_json_atomic, write_text_atomic
from tuitune.core.data.mixture import with_resolved_mix_file
from tuitune.core.errors import TuituneError
from tuitune.core.hardware.gpu_table import parse_gpu
from tuitune.core.runs.nodes import DEFAULT_PORT, Nodes
from tuitune.core.runs.rundir import find_run
from tuitune.core.runs.session_of import run_session
from tuitune.core.session import Session, load_session
from tuitune.core.training.plan import make_plan, planned_fields

FORMATS = ("slurm", "skypilot")
REMOTE = "~/tuitune-job"  # where a SkyPilot node finds the job's files
# The bundled GPU table's keys (core.hardware.gpu_table) as SkyPilot's accelerator names.
SKYPILOT_GPU = {
    "H200": "H200",
    "H100-80GB": "H100",
    "H100-PCIe": "H100",
    "A100-80GB": "A100-80GB",
    "A100-40GB": "A100",
    "L40S": "L40S",
    "A6000": "A6000",
    "L4": "L4",
    "A10G": "A10G",
    "RTX-4090": "RTX4090",
    "RTX-3090": "RTX3090",
    "V100-32GB": "V100-32GB",
    "V100-16GB": "V100",
    "T4": "T4",
}
_SLURM_TIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$|^\d+$")


@dataclass(frozen=True)
class JobRequest:
    """What the job asks the scheduler for."""

    nodes: int = 1
    gpu: str = ""  # "A100-80GB x4" (per node, the bundled table); "" = plan on this machine
    time: str = "04:00:00"  # Slurm's --time
    port: int = DEFAULT_PORT


@dataclass(frozen=True)
class Job:
    """A written job: the scheduler file, the pinned session beside it, and how to submit."""

    format: str
    path: Path
    session: Path
    submit: str

    def line(self) -> str:
        return f"{self.format}: {self.path} (pinned session {self.session}); {self.submit}"


def repo_root() -> Path | None:
    """The tuitune checkout this runs from (it has scripts/install.sh), or None."""
    import tuitune

    root = Path(tuitune.__file__).resolve().parents[1]
    return root if (root / "scripts" / "install.sh").is_file() else None


def plan_for_job(session: Session, req: JobRequest) -> Any:
    """The plan for the job's machines: ``req.gpu`` per node (or this machine), ``req.nodes``."""
    if req.nodes < 1:
        raise TuituneError(f"--nodes {req.nodes}: needs at least 1", fix="use --nodes 1 or more")
    layout = Nodes(count=req.nodes, rdzv=f"HEAD:{req.port}") if req.nodes > 1 else Nodes()
    return make_plan(session, gpu=req.gpu or None, nodes=layout)


def pinned_session(session: Session, plan: Any, place: Any) -> dict[str, Any]:
    """The session with the plan's spec pinned; every path goes through ``place`` (local
    absolute path -> what the job's nodes read)."""
    d = session.to_dict()
    spec = planned_fields(plan.spec)
    # The plan divides a session's accumulation across every process: state the total.
    spec["gradient_accumulation_steps"] = (
        plan.spec.gradient_accumulation_steps * plan.launch.world_size
    )
    d["spec"] = spec
    d["data"]["train"] = [place(session.resolve(p)) for p in session.data.train]
    d["data"]["eval"] = [place(session.resolve(p)) for p in session.data.eval]
    curation = with_resolved_mix_file(session.data.curation, session.resolve("."))
    if curation and isinstance(curation.get("mix_general"), dict):
        mix = curation["mix_general"]
        if mix.get("file"):
            curation = {**curation, "mix_general": {**mix, "file": place(Path(mix["file"]))}}
    d["data"]["curation"] = curation or {}
    for name in ("eval_file", "general_file"):
        value = d["evaluation"].get(name)
        if value:
            d["evaluation"][name] = place(session.resolve(value))
    ref = session.model.ref
    if ref != "default" and Path(ref).expanduser().is_dir():
        d["model"]["ref"] = place(Path(ref).expanduser().resolve(), folder=True)
    d["runs"] = []
    d["name"] = (d.get("name") or d["id"]) + " (job: plan pinned)"
    return d


def _comments(session: Session, plan: Any) -> list[str]:
    lines = [f"tuitune job for session {session.id}: {session.name or ''}".rstrip(": ")]
    lines += [f"  {t}" for t in plan.lines()[:3]]
    return [f"# {t}" for t in lines]


def _replay(session: str, out: str, rdzv: str, nodes: str, rank: str, tuitune: str) -> str:
    return (
        f"{tuitune} replay {session} --out {out} --nodes {nodes} --node-rank {rank} --rdzv {rdzv}"
    )


def slurm_script(session: Session, plan: Any, req: JobRequest, pinned: Path, job_dir: Path) -> str:
    """The sbatch script: one task per node, each runs the replay with its node rank."""
    repo = repo_root()
    gpus = plan.launch.num_processes if plan.hardware.get("gpus") else 0
    out = job_dir / "runs"
    head = [
        "#!/bin/bash",
        *_comments(session, plan),
        f"# Submit: sbatch {shlex.quote(str(job_dir / 'job.sbatch'))}",
        f"#SBATCH --job-name=tuitune-{re.sub(r'[^A-Za-z0-9_.-]', '-', session.id)[:40]}",
        f"#SBATCH --nodes={req.nodes}",
        "#SBATCH --ntasks-per-node=1",
        *([f"#SBATCH --gpus-per-node={gpus}"] if gpus else []),
        f"#SBATCH --time={req.time}",
        f"#SBATCH --output={job_dir}/slurm-%j.out",
        "set -euo pipefail",
        "",
        "# Environment: the tuitune checkout and its .venv (scripts/install.sh) on every node.",
    ]
    if repo is not None:
        head.append(f"export TUITUNE_REPO={shlex.quote(str(repo))}")
        tuitune = '"$TUITUNE_REPO/.venv/bin/tuitune"'
    else:
        tuitune = "tuitune"
    head += [
        "export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false",
        "",
        "# Rendezvous from the allocation: the first host is --node-rank 0 and holds the run.",
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
        f'export TUITUNE_RDZV="$head_node:{req.port}"',
        "",
        "# One task per node; each starts torchrun / accelerate launch for its GPUs.",
    ]
    inner = "exec " + _replay(
        shlex.quote(str(pinned)),
        shlex.quote(str(out)),
        '"$TUITUNE_RDZV"',
        '"$SLURM_NNODES"',
        '"$SLURM_NODEID"',
        tuitune,
    )
    srun = (
        f"srun --nodes={req.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 "
        f"bash -c {shlex.quote(inner)}"
    )
    return "\n".join([*head, srun, ""])


def skypilot_task(session: Session, plan: Any, req: JobRequest, pinned: Path) -> dict[str, Any]:
    """The SkyPilot task: resources from the plan's GPU, one replay per node."""
    repo = repo_root()
    resources: dict[str, Any] = {}
    gpus = plan.launch.num_processes if plan.hardware.get("gpus") else 0
    if gpus:
        if not req.gpu:
            raise TuituneError(
                "a SkyPilot job needs the GPU to ask the cloud for",
                fix='add --gpu NAME[xN], e.g. --gpu "A100-80GB x4" (tuitune plan --list-gpus)',
            )
        card, _count = parse_gpu(req.gpu)
        resources["accelerators"] = f"{SKYPILOT_GPU.get(card.key, card.key)}:{gpus}"
    else:
        resources["cpus"] = "4+"
    task: dict[str, Any] = {
        "name": "tuitune-" + re.sub(r"[^a-z0-9-]", "-", session.id.lower())[:40].strip("-"),
        "num_nodes": req.nodes,
        "resources": resources,
    }
    if repo is not None:
        task["workdir"] = str(repo)
        setup = "bash scripts/install.sh"
        tuitune = ".venv/bin/tuitune"
    else:
        setup = f"python3 -m pip install tuitune=={__version__}"
        tuitune = "tuitune"
    task["file_mounts"] = {}  # filled by the caller from the pinned session's places
    task["envs"] = {"TUITUNE_PORT": str(req.port), "TUITUNE_GPUS_PER_NODE": str(gpus or 0)}
    task["setup"] = setup + "\n"
    replay = _replay(
        f"{REMOTE}/session.json",
        f"{REMOTE}/runs",
        '"$head:$TUITUNE_PORT"',
        '"$SKYPILOT_NUM_NODES"',
        '"$SKYPILOT_NODE_RANK"',
        tuitune,
    )
    run = [
        "set -euo pipefail",
        "# The plan was made for this many GPUs per node: refuse another allocation.",
        'if [ "${SKYPILOT_NUM_GPUS_PER_NODE:-0}" != "$TUITUNE_GPUS_PER_NODE" ]; then',
        '  echo "tuitune: planned $TUITUNE_GPUS_PER_NODE GPUs per node, '
        'got ${SKYPILOT_NUM_GPUS_PER_NODE:-0}" >&2; exit 2',
        "fi",
        "# Rendezvous: the first node's IP is --node-rank 0 and holds the run.",
        'head=$(echo "$SKYPILOT_NODE_IPS" | head -n1)',
        replay,
    ]
    task["run"] = "\n".join(run) + "\n"
    return task


def write_job(
    session: Session,
    fmt: str,
    req: JobRequest,
    out: Path | None = None,
    *,
    plan: Any = None,
    force: bool = False,
) -> Job:
    """Plan the session for the job's machines and write the job and its pinned session
    (an existing job file is replaced only with ``force``)."""
    import yaml

    if fmt not in FORMATS:
        raise TuituneError(f"unknown job format {fmt!r}", fix="use slurm or skypilot")
    if not _SLURM_TIME.match(req.time):
        raise TuituneError(
            f"--time {req.time!r} is not a Slurm time", fix="use HH:MM:SS or D-HH:MM:SS"
        )
    if not 1 <= req.port <= 65535:
        raise TuituneError(f"--port {req.port} out of range", fix="use a port from 1 to 65535")
    plan = plan if plan is not None else plan_for_job(session, req)
    job_dir = (Path(out) if out else paths.data_dir() / "jobs" / session.id).resolve()
    job_dir.mkdir(parents=True, exist_ok=True)
    refuse_existing(job_dir / ("job.sbatch" if fmt == "slurm" else "task.yaml"), force=force)
    if fmt == "slurm":
        pinned = job_dir / "session.json"
        write_json_atomic(pinned, pinned_session(session, plan, _absolute))
        path = job_dir / "job.sbatch"
        write_text_atomic(path, slurm_script(session, plan, req, pinned, job_dir))
        path.chmod(0o755)
        return Job(fmt, path, pinned, f"submit with: sbatch {shlex.quote(str(path))}")
    mounts: dict[str, str] = {}
    pinned = job_dir / "skypilot-session.json"

    def place(local: Path, folder: bool = False) -> str:
        name = f"{'model' if folder else 'data'}/{len(mounts)}-{local.name}"
        mounts[f"{REMOTE}/{name}"] = str(local.resolve())
        return f"{REMOTE}/{name}"

    write_json_atomic(pinned, pinned_session(session, plan, place))
    task = skypilot_task(session, plan, req, pinned)
    task["file_mounts"] = {f"{REMOTE}/session.json": str(pinned), **mounts}
    path = job_dir / "task.yaml"
    text = "\n".join(_comments(session, plan)) + "\n"
    text += yaml.dump(task, Dumper=_block_dumper(), sort_keys=False, width=100)
    write_text_atomic(path, text)
    return Job(fmt, path, pinned, f"launch with: sky launch -c tuitune {shlex.quote(str(path))}")


def _block_str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _block_dumper() -> Any:
    import yaml

    class BlockDumper(yaml.SafeDumper):
        """Multi-line scripts (setup, run) as literal blocks, as SkyPilot's docs write them."""

    BlockDumper.add_representer(str, _block_str)
    return BlockDumper


def _absolute(local: Path, folder: bool = False) -> str:
    return str(local.resolve())


def load_job_session(target: str | Path) -> Session:
    """The session a job is made from: a session file, or a run's own session."""
    p = Path(target).expanduser()
    if p.is_file():
        return load_session(p)

    return run_session(find_run(target))
