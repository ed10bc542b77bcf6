"""Launching and watching training runs: the parent side of the training child.

The child (``python -m tuitune.runner SPEC.json``) runs in its own process session, so a
closing terminal, a dropped SSH connection or a crashing UI never signals it. Everything a
viewer knows comes from files in the run directory: ``run.json`` (pid, launch offsets),
``events.jsonl`` (the event protocol) and ``train.log``. Any number of viewers may tail
them; none of them owns the child.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.atomic import write_json_atomic, write_text_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.events import FINAL_TYPES, parse_line
from tuitune.core.rundir import RunDir
from tuitune.core.spec import TrainSpec

STATES = ("running", "stopped", "finished", "failed", "orphaned")
_FINAL_STATE = {"finished": "finished", "stopped": "stopped", "error": "failed"}

# Popen objects of children started by this process: polling them reaps the zombie, which
# ``os.kill(pid, 0)`` alone would report as alive.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (field 22 of /proc/PID/stat): guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int | None, start_time: str | None = None) -> bool:
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError):
            if stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
        if start_time is not None and _proc_start_time(pid) not in (None, start_time):
            return False
    return True


def read_run_json(run: RunDir) -> dict[str, Any]:
    import json

    try:
        data = json.loads(run.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _check_writable(run: RunDir) -> None:
    """Fail before launch, with one line, when the run directory cannot be written."""
    try:
        run.root.mkdir(parents=True, exist_ok=True)
        probe = run.root / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise TuituneError(
            f"run directory is not writable: {e.strerror or e}",
            path=run.root,
            fix="free disk space or choose another --out directory"
            if e.errno == errno.ENOSPC
            else "choose a writable --out directory",
        ) from None


def child_command(
    spec_path: Path,
    *,
    resume: bool = False,
    num_processes: int = 1,
    fsdp: bool = False,
    cuda: bool | None = None,
) -> list[str]:
    """The command line of the training child.

    One process: ``python -m tuitune.runner``. Several GPUs: ``accelerate launch
    --multi_gpu`` (data parallel; ``fsdp`` shards parameters, gradients and optimizer state
    when one GPU cannot hold them). Several CPU processes (tests, no GPU): torchrun, whose
    processes Trainer joins on the gloo backend.
    """
    args = [str(spec_path)] + (["--resume"] if resume else [])
    if num_processes <= 1:
        return [sys.executable, "-m", "tuitune.runner", *args]
    if not (cuda if cuda is not None else _cuda_devices() > 0):  # cuda: a planned machine
        run = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        return [*run, "--nproc_per_node", str(num_processes), "-m", "tuitune.runner", *args]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", str(num_processes), "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    if fsdp:
        launch += ["--use_fsdp", "--fsdp_sharding_strategy", "FULL_SHARD"]
        launch += ["--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP"]
        launch += ["--fsdp_state_dict_type", "SHARDED_STATE_DICT"]
    return [*launch, "-m", "tuitune.runner", *args]


def _cuda_devices() -> int:
    """Visible CUDA devices without importing torch in the parent (nvidia-smi style count)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(list(Path("/dev").glob("nvidia[0-9]*")))


def start_run(
    spec: TrainSpec,
    run: RunDir,
    *,
    resume: bool = False,
    num_processes: int = 1,
    fsdp: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Launch the training child for ``spec`` in ``run``; return its pid.

    Writes ``spec.json`` and ``run.json``, sends the child's stdout and stderr to
    ``train.log`` and puts it in a new process session. ``resume`` continues from the last
    complete checkpoint (events are appended, so the loss curve continues).
    """
    _check_writable(run)
    state = run_state(run)
    if state == "running":
        raise TuituneError(
            "this run is still training", path=run.root, fix="stop it first: tuitune stop RUN"
        )
    if not spec.output_dir or Path(spec.output_dir) != run.root:
        spec = spec.replace(output_dir=str(run.root))
    try:
        write_text_atomic(run.spec, spec.to_json())
        offset = run.events.stat().st_size if run.events.exists() else 0
        log = open(run.log, "ab")  # noqa: SIM115 - handed to the child
    except OSError as e:
        raise TuituneError(
            f"cannot write the run directory: {e.strerror or e}", path=run.root
        ) from None
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    child_env.update(env or {})
    cmd = child_command(run.spec, resume=resume, num_processes=num_processes, fsdp=fsdp)
    try:
        log.write(f"\n=== tuitune: {' '.join(cmd)} ({time.ctime()})\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env,
            cwd=run.root,
        )
    finally:
        log.close()
    _CHILDREN[proc.pid] = proc
    info = read_run_json(run)
    launches = [*info.get("launches", []), {"time": time.time(), "resume": resume}]
    info.update(
        run_id=run.id,
        created=info.get("created", time.time()),
        pid=proc.pid,
        pid_start=_proc_start_time(proc.pid),
        events_offset=offset,
        method=spec.method,
        model=spec.model,
        num_processes=num_processes,
        fsdp=fsdp,
        launches=launches,
    )
    write_json_atomic(run.run_json, info)
    return proc.pid


def _events_since(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete events after byte ``offset``; returns them and the offset after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    lines = chunk[:end].decode("utf-8", errors="replace").split("\n")
    return [e for line in lines if (e := parse_line(line)) is not None], offset + end


def _log_tail(run: RunDir, lines: int = 20) -> str:
    try:
        with open(run.log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_run(
    run: RunDir,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    poll: float = 0.25,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Follow the latest launch of ``run`` until its final event; return that event.

    When the child vanishes without one (killed, crashed hard), returns a synthesised
    ``error`` event with ``orphaned: True`` and the tail of ``train.log``; nothing is
    written to ``events.jsonl``. Raises TimeoutError after ``timeout`` seconds.
    """
    info = read_run_json(run)
    offset = int(info.get("events_offset", 0))
    pid, pid_start = info.get("pid"), info.get("pid_start")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        alive = _pid_alive(pid, pid_start)
        events, offset = _events_since(run.events, offset)
        for e in events:
            if on_event is not None:
                on_event(e)
            if e.get("type") in FINAL_TYPES:
                _reap(pid)
                return e
        if not alive:
            events, offset = _events_since(run.events, offset)
            for e in events:
                if on_event is not None:
                    on_event(e)
                if e.get("type") in FINAL_TYPES:
                    return e
            code = _reap(pid)
            event = {
                "v": 1,
                "type": "error",
                "time": round(time.time(), 3),
                "orphaned": True,
                "message": "the training process ended without a final event"
                + (f" (exit code {code})" if code is not None else ""),
                "traceback_tail": _log_tail(run),
            }
            if on_event is not None:
                on_event(event)
            return event
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run.id} still running after {timeout} s")
        time.sleep(poll)


def _reap(pid: int | None) -> int | None:
    child = _CHILDREN.pop(pid, None) if pid else None
    if child is None:
        return None
    with contextlib.suppress(subprocess.TimeoutExpired):
        return child.wait(timeout=30)
    return None


def _latest_events(run: RunDir) -> list[dict[str, Any]]:
    """Events of the latest launch (after the last ``start``/launch offset)."""
    info = read_run_json(run)
    events, _ = _events_since(run.events, int(info.get("events_offset", 0)))
    return events


def run_state(run: RunDir) -> str:
    """running | stopped | finished | failed | orphaned (vanished without a final event)."""
    info = read_run_json(run)
    final = next((e for e in reversed(_latest_events(run)) if e.get("type") in FINAL_TYPES), None)
    if final is not None:
        return _FINAL_STATE[final["type"]]
    if _pid_alive(info.get("pid"), info.get("pid_start")):
        return "running"
    return "orphaned"


@dataclass(frozen=True)
class RunInfo:
    """One line of ``tuitune runs``."""

    run: RunDir
    state: str
    method: str
    model: str
    step: int | None
    total_steps: int | None
    created: float
    last_loss: float | None


def run_info(run: RunDir) -> RunInfo:
    info = read_run_json(run)
    events = _latest_events(run)
    step = total = loss = None
    for e in events:
        if e.get("type") == "start":
            total = e.get("total_steps")
        elif e.get("type") == "step":
            step = e.get("step")
            loss = e.get("loss", loss)
        elif e.get("type") in FINAL_TYPES and e.get("step") is not None:
            step = e.get("step")
    created = info.get("created")
    if created is None:
        with contextlib.suppress(OSError):
            created = run.root.stat().st_mtime
    return RunInfo(
        run=run,
        state=run_state(run),
        method=str(info.get("method", "?")),
        model=str(info.get("model", "")),
        step=step,
        total_steps=total,
        created=float(created or 0.0),
        last_loss=loss,
    )


def list_runs(base: str | Path | None = None) -> list[RunInfo]:
    """Runs under ``base`` (default: the runs directory), oldest first."""
    root = Path(base) if base else paths.runs_dir()
    if not root.is_dir():
        return []
    runs = [
        run_info(RunDir(p))
        for p in root.iterdir()
        if p.is_dir() and ((p / "run.json").exists() or (p / "spec.json").exists())
    ]
    return sorted(runs, key=lambda r: r.created)


def stop_run(run: RunDir, *, timeout: float = 60.0, force: bool = False) -> str:
    """Ask the child to stop (SIGTERM: it saves a checkpoint and writes ``stopped``).

    Waits up to ``timeout`` seconds for the final event; ``force`` sends SIGKILL after the
    wait (the run is then resumable from its last complete checkpoint). Returns the state.
    """
    info = read_run_json(run)
    pid, pid_start = info.get("pid"), info.get("pid_start")
    if not _pid_alive(pid, pid_start):
        return run_state(run)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid, pid_start):
        if run_state(run) != "running":
            break
        time.sleep(0.2)
    if force and _pid_alive(pid, pid_start):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.2)
    _reap(pid) if not _pid_alive(pid, pid_start) else None
    return run_state(run)


def last_checkpoint(run: RunDir) -> Path | None:
    """The newest checkpoint whose trainer state was written (the last file Trainer saves),
    so a checkpoint torn by ``kill -9`` is skipped."""
    if not run.checkpoints.is_dir():
        return None
    found = []
    for p in run.checkpoints.iterdir():
        name, _, num = p.name.partition("-")
        if name == "checkpoint" and num.isdigit() and (p / "trainer_state.json").is_file():
            found.append((int(num), p))
    return max(found)[1] if found else None


def remove_torn_checkpoints(run: RunDir) -> list[Path]:
    """Delete checkpoint folders newer than the last complete one (Trainer would pick them)."""
    keep = last_checkpoint(run)
    keep_step = int(keep.name.split("-")[1]) if keep else -1
    removed = []
    if run.checkpoints.is_dir():
        for p in run.checkpoints.iterdir():
            name, _, num = p.name.partition("-")
            if name == "checkpoint" and num.isdigit() and int(num) > keep_step:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed
