"""Scheduler jobs from a session: the sbatch script passes ``bash -n`` and says what the plan
says, its replay line parses with tuitune's own CLI, the pinned session replans to exactly
the planned spec, and the SkyPilot task passes SkyPilot's own schema and Task parser (with
``sky`` importable here, or a Python that has it in ``TUITUNE_SKYPILOT_PYTHON``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuitune.core.errors import TuituneError
from tuitune.core.runs.nodes import Nodes
from tuitune.core.session import load_session
from tuitune.core.training.jobs import JobRequest, plan_for_job, write_job
from tuitune.core.training.plan import make_plan, planned_fields

QUICKSTART = Path(__file__).resolve().parents[2] / "assets" / "sessions" / "quickstart.json"
REQ = JobRequest(nodes=2, gpu="A100-80GB x4", time="02:30:00", port=29555)


@pytest.fixture(scope="module")
def quickstart_plan():
    session = load_session(QUICKSTART)
    return session, plan_for_job(session, REQ)


def test_the_plan_counts_every_process_on_every_node(quickstart_plan):
    _session, plan = quickstart_plan
    la = plan.launch
    assert (la.nodes, la.num_processes, la.world_size) == (2, 4, 8)
    s = plan.spec
    assert la.effective_batch == s.per_device_train_batch_size * s.gradient_accumulation_steps * 8
    cmd = la.command
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert cmd[cmd.index("--num_machines") + 1] == "2"
    assert "2 machines x 4 process(es)" in plan.lines()[1]


def test_slurm_script(quickstart_plan, tmp_path):
    from tuitune.cli import build_parser

    session, plan = quickstart_plan
    job = write_job(session, "slurm", REQ, tmp_path, plan=plan)
    text = job.path.read_text()
    assert subprocess.run(["bash", "-n", str(job.path)]).returncode == 0
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for want in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=02:30:00",
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
        'export TUITUNE_RDZV="$head_node:29555"',
    ):
        assert want in lines, want
    # Every #SBATCH line comes before the first command (sbatch stops reading there).
    first_cmd = next(i for i, x in enumerate(lines) if x and not x.startswith("#"))
    assert max(i for i, x in enumerate(lines) if x.startswith("#SBATCH")) < first_cmd
    (srun,) = [x for x in lines if x.startswith("srun ")]
    argv = shlex.split(srun)
    assert argv[:5] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash"]
    inner = argv[-1]
    assert '--node-rank "$SLURM_NODEID"' in inner and '--nodes "$SLURM_NNODES"' in inner
    # The line each node runs parses with tuitune's own CLI, as node 1 of 2 would run it.
    values = {"$SLURM_NODEID": "1", "$SLURM_NNODES": "2", "$TUITUNE_RDZV": "node-a:29555"}
    for k, v in values.items():
        inner = inner.replace(f'"{k}"', v)
    cmd = shlex.split(inner)
    assert cmd[0] == "exec" and cmd[1].endswith("tuitune") and cmd[2] == "replay"
    args = build_parser().parse_args(cmd[2:])
    assert (args.nodes, args.node_rank, args.rdzv) == (2, 1, "node-a:29555")
    assert Path(args.session) == job.session and Path(args.out) == tmp_path / "runs"


def test_the_pinned_session_replans_to_the_planned_spec(quickstart_plan, tmp_path):
    """What the job's nodes train is what the plan showed: the pinned copy, planned again
    for the same machines, gives the same spec field for field (nothing re-decided)."""
    session, plan = quickstart_plan
    job = write_job(session, "slurm", REQ, tmp_path, plan=plan)
    pinned = load_session(job.session)
    assert pinned.data.train == [str((QUICKSTART.parent / "../quickstart/train.jsonl").resolve())]
    again = make_plan(pinned, gpu=REQ.gpu, nodes=Nodes(2, 1, "node-a:29555"))
    assert planned_fields(again.spec) == planned_fields(plan.spec)
    assert again.launch.effective_batch == plan.launch.effective_batch


def _validate_with_skypilot(path: Path) -> str:
    check = (
        "import sys, yaml, sky\n"
        "from sky.utils import common_utils, schemas\n"
        "cfg = yaml.safe_load(open(sys.argv[1]))\n"
        "common_utils.validate_schema(cfg, schemas.get_task_schema(), 'Invalid task YAML: ')\n"
        "t = sky.Task.from_yaml(sys.argv[1])\n"
        "r = list(t.resources)[0]\n"
        "print(sky.__version__, t.num_nodes, r.accelerators, sorted(t.file_mounts))\n"
    )
    python = sys.executable
    if importlib.util.find_spec("sky") is None:
        python = os.environ.get("TUITUNE_SKYPILOT_PYTHON", "")
        if not python:
            pytest.skip("SkyPilot not installed (pip install -e '.[skypilot]')")
    done = subprocess.run(
        [python, "-c", check, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_skypilot_task(quickstart_plan, tmp_path):
    session, plan = quickstart_plan
    job = write_job(session, "skypilot", REQ, tmp_path, plan=plan)
    task = yaml.safe_load(job.path.read_text())
    assert task["num_nodes"] == 2 and task["resources"] == {"accelerators": "A100-80GB:4"}
    assert task["setup"].strip() == "bash scripts/install.sh"
    assert (Path(task["workdir"]) / "scripts" / "install.sh").is_file()
    run = task["run"]
    for want in ("$SKYPILOT_NODE_RANK", "$SKYPILOT_NODE_IPS", "${SKYPILOT_NUM_GPUS_PER_NODE:-0}"):
        assert want in run, want
    mounts = task["file_mounts"]
    assert mounts["~/tuitune-job/session.json"] == str(job.session)
    pinned = json.loads(job.session.read_text())
    for remote in [*pinned["data"]["train"], pinned["evaluation"]["eval_file"]]:
        assert Path(mounts[remote]).is_file()  # every file the copy names travels with it
    out = _validate_with_skypilot(job.path)
    assert " 2 {'A100-80GB': 4} " in out, out
    # The same check refuses a broken task (it is not a check that cannot fail).
    bad = tmp_path / "bad.yaml"
    bad.write_text(job.path.read_text().replace("num_nodes: 2", "num_nodes: two"))
    with pytest.raises(AssertionError):
        _validate_with_skypilot(bad)


def test_export_command_and_bad_input(tmp_path, capsys):
    from tuitune.cli import main

    rc = main(["export", str(QUICKSTART), "-f", "slurm", "--out", str(tmp_path), "--gpu", "T4"])
    assert rc == 0 and (tmp_path / "job.sbatch").is_file()
    assert "sbatch" in capsys.readouterr().out
    again = ["export", str(QUICKSTART), "-f", "slurm", "--out", str(tmp_path), "--gpu", "T4"]
    assert main(again) == 2 and "--force" in capsys.readouterr().err  # never replaced silently
    assert main([*again, "--force"]) == 0
    session = load_session(QUICKSTART)
    with pytest.raises(TuituneError, match="not a Slurm time"):
        write_job(session, "slurm", JobRequest(time="4 hours"), tmp_path / "x")
    rc = main(["export", str(QUICKSTART), "-f", "slurm", "--nodes", "0", "--out", str(tmp_path)])
    assert rc == 2 and "--nodes 0" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_cpu_job_asks_for_no_gpus(tmp_path):
    from tuitune.core.hardware.probe import HardwareInfo

    session = load_session(QUICKSTART)
    plan = make_plan(session, hardware=HardwareInfo(cpu_count=2, ram_total_bytes=8 << 30))
    job = write_job(session, "slurm", JobRequest(), tmp_path, plan=plan)
    assert "--gpus-per-node" not in job.path.read_text()
    sky = write_job(session, "skypilot", JobRequest(), tmp_path, plan=plan)
    assert yaml.safe_load(sky.path.read_text())["resources"] == {"cpus": "4+"}
