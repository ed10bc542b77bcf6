"""Launching and watching training runs: the parent side of the training child.

The child (``python -m tuitune.runner SPEC.json``) runs in its own process session, so a
closing terminal, a dropped SSH connection or a crashing UI never signals it. Everything a
viewer knows comes from files in the run directory: ``run.json`` (pid, launch offsets),
``events.jsonl`` (the event protocol) and ``train.log``. Any number of viewers may tail
them; none of them owns the child.

Every end of a run is an event with its cause: the child writes ``finished``, ``stopped``
(``by`` whom) or ``error``; a child that vanished without one (``kill -9``, the OOM killer)
is found by the next look (``run_state``, ``wait_run``, a follower) and recorded then as an
``error`` of ``kind: "killed"``. A run folder whose launch failed carries the reason in
``run.json``, so ``tuitune runs`` lists it as failed instead of hiding it.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.atomic import write_json_atomic, write_text_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.runs.events import EVENTS_VERSION, FINAL_TYPES, EventWriter, parse_line
from tuitune.core.runs.nodes import SINGLE, Nodes, nodes_of
from tuitune.core.runs.pids import CHILDREN, pid_alive, proc_start_time, reap
from tuitune.core.runs.rundir import RunDir, read_run_json
from tuitune.core.spec import TrainSpec

STATES = ("preparing", "running", "stopped", "finished", "failed", "killed")
STOP_REQUEST = "stop-request.json"  # who asked for a stop (read by the child's handler)
ALLOC_CONF = "expandable_segments:True"  # less fragmentation: fewer OOMs at the same batch


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
    nodes: Nodes = SINGLE,
    cuda: bool | None = None,
) -> list[str]:
    """The command line of the training child.

    One process: ``python -m tuitune.runner``. Several GPUs: ``accelerate launch
    --multi_gpu`` (data parallel; ``fsdp`` shards parameters, gradients and optimizer state
    when one GPU cannot hold them). Several CPU processes (tests, no GPU): torchrun, whose
    processes Trainer joins on the gloo backend. ``num_processes`` counts this machine's
    processes; with several ``nodes`` each machine runs this launcher with its node rank and
    the rank-0 machine's address, on the static rendezvous (see ``tuitune.core.runs.nodes``).
    """
    args = [str(spec_path)] + (["--resume"] if resume else [])
    if num_processes <= 1 and not nodes.multi:
        return [sys.executable, "-m", "tuitune.runner", *args]
    if not (cuda if cuda is not None else _cuda_devices() > 0):  # cuda: a planned machine
        run = [sys.executable, "-m", "torch.distributed.run"]
        if nodes.multi:
            run += ["--nnodes", str(nodes.count), "--node_rank", str(nodes.rank)]
            run += ["--rdzv_backend", "static", "--rdzv_endpoint", nodes.rdzv]
        else:
            run += ["--standalone"]
        return [*run, "--nproc_per_node", str(num_processes), "-m", "tuitune.runner", *args]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", str(num_processes * nodes.count)]
    launch += ["--num_machines", str(nodes.count)]
    if nodes.multi:
        launch += ["--machine_rank", str(nodes.rank), "--main_process_ip", nodes.host]
        launch += ["--main_process_port", str(nodes.port)]
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


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ours, unbuffered output, and PyTorch's expandable segments
    allocator unless the user chose their own ``PYTORCH_CUDA_ALLOC_CONF``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(extra or {})
    if not env.get("PYTORCH_CUDA_ALLOC_CONF") and not env.get("PYTORCH_ALLOC_CONF"):
        env["PYTORCH_CUDA_ALLOC_CONF"] = ALLOC_CONF
    return env


def start_run(
    spec: TrainSpec,
    run: RunDir,
    *,
    resume: bool = False,
    num_processes: int = 1,
    fsdp: bool = False,
    env: dict[str, str] | None = None,
    nodes: Nodes | None = None,
) -> int:
    """Launch the training child for ``spec`` in ``run``; return its pid.

    Writes ``spec.json`` and ``run.json``, sends the child's stdout and stderr to
    ``train.log`` and puts it in a new process session. ``resume`` continues from the last
    complete checkpoint (events are appended, so the loss curve continues). ``nodes``: this
    machine's part of a several-machine run (a resume keeps the layout in ``run.json``).
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
    child_env = child_environment(env)
    with contextlib.suppress(OSError):
        (run.root / STOP_REQUEST).unlink()
    if nodes is None:
        nodes = nodes_of(read_run_json(run)) if resume else SINGLE
    cmd = child_command(
        run.spec, resume=resume, num_processes=num_processes, fsdp=fsdp, nodes=nodes
    )
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
    CHILDREN[proc.pid] = proc
    info = read_run_json(run)
    launches = [*info.get("launches", []), {"time": time.time(), "resume": resume}]
    info.update(
        run_id=run.id,
        created=info.get("created", time.time()),
        pid=proc.pid,
        pid_start=proc_start_time(proc.pid),
        events_offset=offset,
        method=spec.method,
        model=spec.model,
        num_processes=num_processes,
        fsdp=fsdp,
        launches=launches,
        **nodes.run_fields(),
    )
    info.pop("launch_error", None)
    info.pop("preparer_pid", None)
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


def record_killed(run: RunDir, code: int | None = None) -> dict[str, Any]:
    """Append the ``killed`` end of a child that vanished without a final event.

    Whoever notices first writes it (an exclusive marker per launch keeps two viewers from
    writing it twice); a read-only run directory still gets the event returned."""
    if code is not None and code < 0:
        how = f"killed by {signal.Signals(-code).name}" if -code in signal.valid_signals() else ""
    else:
        how = f"exit code {code}" if code is not None else "killed, or crashed without a trace"
    event = {
        "v": EVENTS_VERSION,
        "type": "error",
        "kind": "killed",
        "time": round(time.time(), 3),
        "orphaned": True,
        "step": _last_step(run),
        "message": f"the training process ended without a final event ({how or 'killed'})",
        "fix": "tuitune resume RUN continues from the last complete checkpoint",
        "traceback_tail": _log_tail(run),
    }
    info = read_run_json(run)
    marker = run.root / f".killed-{int(info.get('events_offset', 0))}-{info.get('pid')}"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        final = _latest_summary(run).final
        return final if final is not None else event
    except OSError:
        return event
    os.close(fd)
    with contextlib.suppress(OSError), EventWriter(run.events) as w:
        w.emit(**{k: v for k, v in event.items() if k not in ("v", "time")})
    return event


def _last_step(run: RunDir) -> int | None:
    s = _latest_summary(run)
    return s.step


_SCAN_BLOCK = 65536
_SCAN_LIMIT = 8 * 2**20  # never read more than this backwards to find a run's end


def _events_backwards(path: Path, start: int) -> Iterator[dict[str, Any]]:
    """Complete events after byte ``start``, last first, read in blocks from the end: a
    long run's summary costs a few kilobytes, not the whole file."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, carry, read = end, b"", 0
        while pos > start and read < _SCAN_LIMIT:
            size = min(_SCAN_BLOCK, pos - start)
            pos -= size
            f.seek(pos)
            chunk = f.read(size) + carry
            read += size
            lines = chunk.split(b"\n")
            carry = lines.pop(0) if pos > start else b""
            for line in reversed(lines):
                e = parse_line(line.decode("utf-8", errors="replace"))
                if e is not None:
                    yield e
        if carry and pos <= start:
            e = parse_line(carry.decode("utf-8", errors="replace"))
            if e is not None:
                yield e


def _first_event(path: Path, start: int) -> dict[str, Any] | None:
    """The first ``start`` event at or after byte ``start`` (within the first 256 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            head = f.read(262144)
    except OSError:
        return None
    for line in head.split(b"\n"):
        e = parse_line(line.decode("utf-8", errors="replace"))
        if e is not None and e.get("type") == "start":
            return e
    return None


@dataclass(frozen=True)
class _Summary:
    """What the tail of the latest launch says: its end (if any), last step and loss."""

    final: dict[str, Any] | None
    step: int | None
    loss: float | None
    total_steps: int | None


def _latest_summary(run: RunDir, info: dict[str, Any] | None = None) -> _Summary:
    info = read_run_json(run) if info is None else info
    offset = int(info.get("events_offset", 0))
    final = step = loss = None
    for e in _events_backwards(run.events, offset):
        kind = e.get("type")
        if kind in FINAL_TYPES and final is None and step is None:
            final = e
            if e.get("step") is not None:
                step = e.get("step")
        elif kind == "step" and step is None:
            step, loss = e.get("step"), e.get("loss")
        elif kind == "step" and loss is None:
            loss = e.get("loss")
        if step is not None and loss is not None:
            break
    start = _first_event(run.events, offset)
    total = start.get("total_steps") if start else info.get("total_steps")
    return _Summary(final=final, step=step, loss=loss, total_steps=total)


def _state_of(final: dict[str, Any]) -> str:
    kind = final.get("type")
    if kind == "finished":
        return "finished"
    if kind == "stopped":
        return "stopped"
    return "killed" if final.get("kind") == "killed" else "failed"


def final_reason(final: dict[str, Any] | None) -> str:
    """One line saying why a run ended (empty for a run that has not)."""
    if not final:
        return ""
    kind = final.get("type")
    if kind == "finished":
        return "finished"
    if kind == "stopped":
        by = final.get("by")
        reason = str(final.get("reason") or "")
        return reason if not by or str(by) in reason else f"{reason} (by {by})".strip()
    return str(final.get("message") or "failed").splitlines()[0]


def _state_and_reason(run: RunDir, info: dict[str, Any]) -> tuple[str, str, _Summary]:
    pid, pid_start = info.get("pid"), info.get("pid_start")
    alive = pid_alive(pid, pid_start)  # before reading: a final event precedes the exit
    summary = _latest_summary(run, info)
    if summary.final is not None:
        return _state_of(summary.final), final_reason(summary.final), summary
    if not pid:
        if info.get("launch_error"):
            return "failed", str(info["launch_error"]), summary
        if pid_alive(info.get("preparer_pid"), info.get("preparer_start")):
            return "preparing", "preparing data", summary
        if info:
            return "failed", "the process preparing it ended before training started", summary
        return "failed", "never started (no run.json)", summary
    if alive:
        return "running", "", summary
    final = record_killed(run, reap(pid))
    return _state_of(final), final_reason(final), _latest_summary(run, info)


def run_state(run: RunDir) -> str:
    """preparing | running | stopped | finished | failed | killed.

    A child gone without a final event is recorded as killed by this look."""
    return _state_and_reason(run, read_run_json(run))[0]


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
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.run.id,
            "path": str(self.run.root),
            "state": self.state,
            "reason": self.reason,
            "method": self.method,
            "model": self.model,
            "step": self.step,
            "total_steps": self.total_steps,
            "created": self.created,
            "last_loss": self.last_loss,
        }


def run_info(run: RunDir) -> RunInfo:
    """The run's line from ``run.json`` and the tail of ``events.jsonl`` only (cheap: a long
    run's events are read from the end, a few blocks at most)."""
    info = read_run_json(run)
    state, reason, summary = _state_and_reason(run, info)
    created = info.get("created")
    if created is None:
        with contextlib.suppress(OSError):
            created = run.root.stat().st_mtime
    return RunInfo(
        run=run,
        state=state,
        method=str(info.get("method", "?")),
        model=str(info.get("model", "")),
        step=summary.step,
        total_steps=summary.total_steps,
        created=float(created or 0.0),
        last_loss=summary.loss,
        reason=reason,
    )


_RUN_FILES = ("run.json", "spec.json", "events.jsonl", "session.json")


def list_runs(base: str | Path | None = None) -> list[RunInfo]:
    """Runs under ``base`` (default: the runs directory), oldest first; folders a failed
    launch left behind are listed too (failed, with their reason)."""
    root = Path(base) if base else paths.runs_dir()
    if not root.is_dir():
        return []
    runs = [
        run_info(RunDir(p))
        for p in root.iterdir()
        if p.is_dir() and any((p / name).exists() for name in _RUN_FILES)
    ]
    return sorted(runs, key=lambda r: r.created)


def is_empty_run(info: RunInfo) -> bool:
    """A run folder with nothing worth keeping: not going, never trained a step, no
    checkpoint, no saved model."""
    r = info.run
    if info.state in ("running", "preparing") or info.step:
        return False
    if r.adapter.exists() or last_checkpoint(r) is not None:
        return False
    return not (r.checkpoints.is_dir() and any(r.checkpoints.iterdir()))


def prune_runs(base: str | Path | None = None) -> list[RunInfo]:
    """Delete the empty run folders (see ``is_empty_run``); returns what was removed."""
    removed = []
    for info in list_runs(base):
        if is_empty_run(info):
            shutil.rmtree(info.run.root, ignore_errors=True)
            removed.append(info)
    return removed


def stop_run(
    run: RunDir, *, timeout: float = 60.0, force: bool = False, by: str = "tuitune stop"
) -> str:
    """Ask the child to stop (SIGTERM: it saves a checkpoint and writes ``stopped``).

    ``by`` names who asked (written to ``RUN/stop-request.json`` first; the child's
    ``stopped`` event carries it). Waits up to ``timeout`` seconds for the final event;
    ``force`` sends SIGKILL after the wait (the run is then resumable from its last
    complete checkpoint). Returns the state.
    """
    info = read_run_json(run)
    pid, pid_start = info.get("pid"), info.get("pid_start")
    if not pid_alive(pid, pid_start):
        return run_state(run)
    with contextlib.suppress(OSError):
        write_json_atomic(
            run.root / STOP_REQUEST, {"by": by, "pid": os.getpid(), "time": time.time()}
        )
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid, pid_start):
        if run_state(run) != "running":
            break
        time.sleep(0.2)
    if force and pid_alive(pid, pid_start):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.2)
    reap(pid) if not pid_alive(pid, pid_start) else None
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
