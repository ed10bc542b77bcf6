"""GPU proof in one prepared run: memory, speed, QLoRA end to end and OOM, through tuitune's
own path (sessions built here, trained by ``tuitune replay``).

    python benchmarks/gpu_proof.py --dry-run                # here, on CPU: < 2 minutes
    python benchmarks/gpu_proof.py --part memory --out DIR  # GPU: memory rows + forced OOM
    python benchmarks/gpu_proof.py --part speed --out DIR   # GPU: speed cases + QLoRA e2e

Each part holds itself to under 5 minutes of wall time on an H100/H200 (rows that would run
past its budget are skipped and listed as such) and writes ``DIR/gpu_proof-PART.json`` and
``DIR/gpu_proof-PART.md``, and prints the table. How to carry it to the lent GPU machine:
``benchmarks/README.md``.

1. Memory: the rows of ``gpu_configs.FIXED`` plus four drawn at run time from the pool
   (``--seed``, printed). Each row is a session (a random-weight model built from the
   architecture's published config, synthetic chat data of exact token lengths) replayed with
   ``python -m tuitune replay`` for a few steps. Per row: the plan's predicted peak (the
   estimator where the plan is not in this tree), the runner's ``torch.cuda.max_memory_reserved``
   (the ``memory_gib`` of its step events), the NVML peak of the training process (sampled in
   a thread of this script) and the errors. Rows run side by side (``--parallel``): both peaks
   are per process.
2. Speed: ``benchmarks/throughput.py``'s cases on variable-length chat data, plain TRL against
   ``tuitune replay`` with its plan capped at the baseline's measured peak.
3. QLoRA end to end: replay (train, evaluate base vs tuned), ``tuitune chat`` one message,
   ``tuitune export -f merged``; the GPU memory peak of each step.
4. OOM: a plan over the GPU's capacity (``--force``), ``auto_oom_retry`` on, one long example
   placed where the seeded sampler serves it after the first checkpoints: the run must report
   the OOM with the checklist advice and finish with the same effective batch.

The dry run builds every configuration (sessions, plans or estimates for the real
architectures, tiny stand-in models of each family), checks every import the GPU run needs,
and replays a few of the sessions on the CPU, including the OOM session, to check that the
long example lands at the step the GPU run expects.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import chat_data  # noqa: E402
import gpu_configs as cfgs  # noqa: E402
from replay_run import Replay, child_env, plan_module, write_session  # noqa: E402

GiB = 2**30
# Memory rows replayed on the CPU by the dry run (tiny stand-ins); --dry-launch adds more
# (r11 DPO, r12 GRPO: each a minute or two on a busy 2-core CPU).
DRY_LAUNCH = ("r02",)
# The dry run plans the real architectures for this GPU.
DRY_GPU = "H100-80GB"
# Parallel memory rows may fill this share of the GPU by their predicted peaks.
PARALLEL_SHARE = 0.7
REQUIRED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers")
GPU_REQUIRED = ("bitsandbytes", "pynvml")
OPTIONAL = ("liger_kernel",)
TUITUNE_MODULES = (
    "tuitune.replay",
    "tuitune.core.training.launch",
    "tuitune.core.runs.process",
    "tuitune.core.hardware.estimate",
    "tuitune.core.hardware.recipe",
    "tuitune.core.ship.chat",
    "tuitune.core.ship.export",
    "tuitune.core.evaluation.scoring",
    "tuitune.runner.train",
    "tuitune.runner.build",
    "tuitune.runner.evaluate",
    "throughput",
)


T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:5.0f} s] {text}", flush=True)


# --------------------------------------------------------------------------------------
# Environment: imports, the GPU, NVML
# --------------------------------------------------------------------------------------


def check_imports(gpu: bool) -> dict[str, Any]:
    """Import everything the GPU run needs; versions, and what is missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    optional_missing: list[str] = []
    for name in (*REQUIRED, *GPU_REQUIRED, *OPTIONAL, *TUITUNE_MODULES):
        try:
            mod = importlib.import_module(name)
            found[name] = str(getattr(mod, "__version__", "ok"))
        except Exception as e:  # a missing wheel or a broken native library: reported
            (optional_missing if name in OPTIONAL else missing).append(f"{name}: {e}")
    return {"versions": found, "missing": missing, "optional_missing": optional_missing}


class ImportCheck:
    """``check_imports`` in a child process, started first and read last, so the heavy
    imports overlap the building (the result is the same as importing here)."""

    def __init__(self, gpu: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--check-imports", "gpu" if gpu else "cpu"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_env(),
        )

    def result(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=600)
        lines = [ln for ln in out.splitlines() if ln.startswith("IMPORTS ")]
        if not lines:
            return {"versions": {}, "missing": ["the import check crashed"], "optional_missing": []}
        return json.loads(lines[-1][8:])


def replay_supports(flag: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "tuitune", "replay", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    return flag in out.stdout


@dataclass
class Gpu:
    """The GPU as NVML sees it (this process never creates a CUDA context)."""

    name: str
    total: int
    capability: tuple[int, int]
    handle: Any

    @classmethod
    def probe(cls) -> Gpu | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no driver, no GPU
            return None
        name = pynvml.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else name
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        cc = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(h))
        return cls(name, int(mem.total), (int(cc[0]), int(cc[1])), h)

    def device(self, budget: int | None = None) -> Any:
        from tuitune.core.hardware.recipe import Device

        free = int(budget) if budget else 0
        return Device("cuda", self.name, self.total, free, self.capability)


class NvmlSampler:
    """Peak GPU memory per process and for the device, sampled every ``every`` seconds."""

    def __init__(self, gpu: Gpu | None, every: float = 0.02) -> None:
        self.gpu, self.every = gpu, every
        self.per_pid: dict[int, int] = {}
        self.seen: dict[int, tuple[float, float]] = {}  # pid -> (first, last) seen
        self.claimed: set[int] = set()
        self.device_peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> NvmlSampler:
        if self.gpu is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        import pynvml

        while not self._stop.is_set():
            try:
                used = int(pynvml.nvmlDeviceGetMemoryInfo(self.gpu.handle).used)
                procs = pynvml.nvmlDeviceGetComputeRunningProcesses(self.gpu.handle)
            except Exception:  # a transient NVML error: skip this sample
                time.sleep(self.every)
                continue
            now = time.monotonic()
            with self._lock:
                self.device_peak = max(self.device_peak, used)
                for p in procs:
                    mem = int(p.usedGpuMemory or 0)
                    self.per_pid[p.pid] = max(self.per_pid.get(p.pid, 0), mem)
                    first, _last = self.seen.get(p.pid, (now, now))
                    self.seen[p.pid] = (first, now)
            time.sleep(self.every)

    def peak(self, pid: int | None) -> int | None:
        if self.gpu is None or pid is None:
            return None
        with self._lock:
            return self.per_pid.get(pid)

    def peak_between(self, start: float, end: float) -> tuple[int | None, str]:
        """Peak of the NVML process that lived inside [start, end] (monotonic seconds) and
        was not claimed yet: in a container NVML may report host PIDs, which then match no
        PID of ours; the training process is the one that came and went with the row."""
        with self._lock:
            inside = [
                (last, pid)
                for pid, (first, last) in self.seen.items()
                if first >= start - 0.5 and last <= end + 0.5 and pid not in self.claimed
            ]
            if not inside:
                return None, "none"
            _last, pid = max(inside)
            self.claimed.add(pid)
            return self.per_pid.get(pid), "by lifetime" if len(
                inside
            ) == 1 else "by lifetime (ambiguous)"

    def reset_device_peak(self) -> None:
        with self._lock:
            self.device_peak = 0

    def device_used(self) -> int | None:
        if self.gpu is None:
            return None
        import pynvml

        return int(pynvml.nvmlDeviceGetMemoryInfo(self.gpu.handle).used)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def peak_tflops(gpu: Gpu | None) -> float | None:
    """Dense bf16 peak FLOP/s from the plan's GPU table (throughput.py's table without it)."""
    import throughput

    return throughput.gpu_peak_flops(gpu.name) if gpu is not None else None


# --------------------------------------------------------------------------------------
# Models: random weights from published configs (tiny stand-ins on the CPU)
# --------------------------------------------------------------------------------------


class Models:
    """Builds each architecture once, before its first row; deletes it after its last.

    On the GPU a builder child builds in bf16 on the device and saves to the work directory
    (this process keeps no CUDA context); on the CPU the tiny stand-ins are built in process.
    """

    def __init__(self, work: Path, *, gpu: bool, max_length: int = 4096) -> None:
        self.work, self.gpu, self.max_length = work / "models", gpu, max_length
        self.work.mkdir(parents=True, exist_ok=True)
        self.ready: dict[str, Path] = {}
        self.seconds: dict[str, float] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._pending: str | None = None

    def path(self, arch: str) -> Path:
        return self.work / arch

    def config(self, arch: str) -> dict[str, Any]:
        return cfgs.arch_config(arch) if self.gpu else cfgs.tiny_config(arch)

    def vocab(self, arch: str) -> int:
        return int(self.config(arch)["vocab_size"])

    def bytes_on_disk(self, arch: str) -> int:
        from tuitune.core.hardware.estimate import ModelShape

        return 2 * ModelShape.from_config(self.config(arch)).param_count()

    # GPU: an asynchronous builder child, one request at a time
    def request(self, arch: str) -> None:
        if arch in self.ready or self._pending is not None:
            return
        if not self.gpu:
            t = time.monotonic()
            chat_data.build_model(self.config(arch), self.path(arch), dtype="fp32")
            self.ready[arch] = self.path(arch)
            self.seconds[arch] = round(time.monotonic() - t, 2)
            return
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, "--build-server", str(self.work)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
        assert self._proc.stdin is not None
        self._proc.stdin.write(arch + "\n")
        self._proc.stdin.flush()
        self._pending = arch
        self._t = time.monotonic()

    def poll(self, block: bool = False) -> None:
        if self._pending is None or self._proc is None:
            return
        assert self._proc.stdout is not None
        if not block:
            import select

            ready, _, _ = select.select([self._proc.stdout], [], [], 0)
            if not ready:
                return
        line = ""
        while not line.startswith(("BUILT ", "FAILED ")):  # skip any library chatter
            raw = self._proc.stdout.readline()
            if not raw:
                raise RuntimeError(f"model builder exited while building {self._pending}")
            line = raw.strip()
        if line.startswith("FAILED "):
            raise RuntimeError(f"model builder: {line}")
        self.ready[self._pending] = self.path(self._pending)
        self.seconds[self._pending] = round(time.monotonic() - self._t, 2)
        self._pending = None

    def get(self, arch: str) -> Path:
        self.request(arch)
        while arch not in self.ready:
            self.poll(block=True)
            self.request(arch)
        return self.ready[arch]

    def drop(self, arch: str) -> None:
        if arch in self.ready:
            shutil.rmtree(self.ready.pop(arch), ignore_errors=True)

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=30)


def build_server(work: str) -> int:
    """The builder child: one architecture name per stdin line, built in bf16 on the GPU."""
    import torch

    for line in sys.stdin:
        arch = line.strip()
        if not arch:
            continue
        try:
            chat_data.build_model(
                cfgs.arch_config(arch), Path(work) / arch, device="cuda", dtype="bf16"
            )
            torch.cuda.empty_cache()
            print(f"BUILT {arch}", flush=True)
        except Exception as e:  # reported to the parent, which fails the row
            print(f"FAILED {arch}: {type(e).__name__}: {e}", flush=True)
    return 0


# --------------------------------------------------------------------------------------
# Sessions and data
# --------------------------------------------------------------------------------------


def row_data(row: cfgs.MemoryRow, vocab: int, directory: Path) -> Path:
    """Training data for a memory row: unpacked rows are exactly ``seq`` tokens (so every
    micro-batch is micro x seq), packed ones 64-seq tokens (packed into full rows)."""
    need = row.micro * row.steps
    if row.method == "dpo":
        rows = chat_data.preference_rows(need + 4, row.seq // 2, seed=1, vocab=vocab)
    elif row.method == "grpo":
        rows, _ = chat_data.chat_rows(need + 4, (row.seq // 2, row.seq // 2), seed=1, vocab=vocab)
    elif row.pack:
        n = int(need * row.seq / ((64 + row.seq) / 2) * 1.3) + 8
        rows, _ = chat_data.chat_rows(n, (64, row.seq), seed=1, vocab=vocab)
    else:
        rows, _ = chat_data.chat_rows(need + 4, (row.seq, row.seq), seed=1, vocab=vocab)
    return chat_data.write_jsonl(directory / "train.jsonl", rows)


def predicted_order(n: int, seed: int) -> list[int]:
    """The order in which Trainer's seeded sampler serves ``n`` rows (one process): accelerate's
    SeedableRandomSampler reseeds a CPU generator with ``data_seed + epoch`` and yields
    ``torch.randperm``. The dry run checks this against a real run."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return torch.randperm(n, generator=g).tolist()


def oom_data(case: cfgs.OomCase, vocab: int, directory: Path) -> tuple[Path, int]:
    """Short rows, and one long row at the index the sampler serves first in ``oom_step``."""
    rows, _ = chat_data.chat_rows(case.rows, case.short_len, seed=3, vocab=vocab)
    long_row, _ = chat_data.chat_rows(1, (case.long_len, case.long_len), seed=4, vocab=vocab)
    per_step = case.micro * case.accum
    position = (case.oom_step - 1) * per_step
    index = predicted_order(len(rows), case.seed)[position]
    rows[index] = long_row[0]
    return chat_data.write_jsonl(directory / "train.jsonl", rows), index


# --------------------------------------------------------------------------------------
# The prediction: the plan where it exists, the estimator otherwise
# --------------------------------------------------------------------------------------


def predict(session_path: Path, *, gpu: Gpu | None, dry: bool) -> dict[str, Any]:
    """Predicted peak reserved and NVML bytes of the session, and where they come from."""
    from tuitune.core.session import load_session

    session = load_session(session_path)
    plan = plan_module()
    out: dict[str, Any] = {}
    if plan is not None:
        try:
            kwargs: dict[str, Any] = {"gpu": DRY_GPU} if dry or gpu is None else {}
            p = plan.make_plan(session, **kwargs)
            est = p.estimate
            out = {
                "source": "plan",
                "reserved": int(est.peak_reserved),
                "nvml": int(est.nvidia_smi_used),
                "verdict": str(getattr(p.verdict, "status", p.verdict)),
                "spec": _memory_fields(p.spec.to_dict() if hasattr(p.spec, "to_dict") else {}),
            }
            return out
        except Exception as e:  # the plan is new: its failure is a finding, not a crash
            out["plan_error"] = f"{type(e).__name__}: {e}"
    from tuitune.core.hardware import estimate as est_mod
    from tuitune.core.hardware import recipe

    spec = session.train_spec().replace(model=session.model.ref)
    est = est_mod.estimate_model(spec.model, est_mod.TrainSetup(**recipe._setup_fields(spec)))
    out.update(
        source="estimator",
        reserved=int(est.peak_reserved),
        nvml=int(est.nvidia_smi_used),
        verdict="",
        spec=_memory_fields(spec.to_dict()),
    )
    if spec.method == "grpo":
        out["note"] = "GRPO's generation is not modelled by the estimator (sized as LoRA SFT)"
    return out


MEMORY_FIELDS = (
    "method",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "gradient_checkpointing",
    "packing",
    "attn_implementation",
    "use_liger_kernel",
    "load_in_4bit",
    "use_dora",
    "optim",
    "bf16",
)


def _memory_fields(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec.get(k) for k in MEMORY_FIELDS}


# --------------------------------------------------------------------------------------
# Replay: the user's path, as a child process
# --------------------------------------------------------------------------------------


def measured(result: dict[str, Any]) -> dict[str, Any]:
    """Peak reserved (GiB from the runner's step events), steps, final state."""
    steps = [e for e in result["events"] if e.get("type") == "step"]
    final = next(
        (e for e in reversed(result["events"]) if e.get("type") in ("finished", "error")), {}
    )
    mem = [float(e.get("memory_gib") or 0) for e in steps]
    return {
        "reserved": int(max(mem) * GiB) if mem else None,
        "steps": len(steps),
        "final": final.get("type") or f"exit {result['exit']}",
        "message": final.get("message", ""),
    }


def dry_overrides() -> dict[str, Any]:
    """What the CPU needs changed in a GPU session (nothing that moves data or its order)."""
    return {"bf16": False, "optim": "adamw_torch", "load_in_4bit": False}


# --------------------------------------------------------------------------------------
# Part 1: memory rows
# --------------------------------------------------------------------------------------


@dataclass
class RowJob:
    row: cfgs.MemoryRow
    session: Path
    predicted: dict[str, Any]
    replay: Replay | None = None
    result: dict[str, Any] = field(default_factory=dict)


def prepare_rows(
    rows: list[cfgs.MemoryRow], work: Path, models: Models, *, gpu: Gpu | None, dry: bool
) -> list[RowJob]:
    """A session per row; on the CPU each also gets a config-only twin of the real
    architecture so the prediction is the GPU's."""
    jobs = []
    for row in rows:
        d = work / "rows" / row.id
        # On the CPU the tiny stand-in trains a smaller version of the row (plumbing only);
        # the prediction is made for the real row on the real architecture.
        small = dry_row(row) if dry else row
        data = row_data(small, models.vocab(row.arch), d)
        session = write_session(
            d / "session.json",
            model=models.path(row.arch),
            train=[data],
            spec=small.spec(),
            name=f"gpu proof {row.id}: {small.label}",
        )
        twin = session
        if dry:
            real = chat_data.config_only(cfgs.arch_config(row.arch), d / "real-config")
            real_data = row_data(row, int(cfgs.arch_config(row.arch)["vocab_size"]), d / "real")
            twin = write_session(
                d / "session-real.json",
                model=real,
                train=[real_data],
                spec=row.spec(),
                name=f"gpu proof {row.id} (real architecture, config only)",
            )
        jobs.append(RowJob(row, session, predict(twin, gpu=gpu, dry=dry)))
    return jobs


def dry_row(row: cfgs.MemoryRow) -> cfgs.MemoryRow:
    """The CPU version of a row: same method, packing and checkpointing, small sizes."""
    import dataclasses

    return dataclasses.replace(row, seq=min(row.seq, 256), micro=min(row.micro, 4), steps=2)


def run_memory(
    jobs: list[RowJob],
    models: Models,
    nvml: NvmlSampler,
    *,
    gpu: Gpu | None,
    parallel: int,
    deadline: float,
    timeout: float,
    launch: set[str] | None,
    keep: frozenset[str] = frozenset(),
) -> None:
    """Replay the rows, up to ``parallel`` at once within the predicted-memory share; a
    model is deleted after its last row unless ``keep`` names it (a later part needs it)."""
    queue = [j for j in jobs if launch is None or j.row.id in launch]
    for j in jobs:
        if j not in queue:
            j.result = {"status": "built only (dry run)"}
    running: list[RowJob] = []
    capacity = gpu.total * PARALLEL_SHARE if gpu else float("inf")
    overrides = {} if gpu else dry_overrides()
    force = gpu is not None and replay_supports("--force")
    while queue or running:
        models.poll()
        for j in list(running):
            if j.replay is not None and j.replay.done():
                finish_row(j, nvml)
                running.remove(j)
                if j.row.arch not in keep and not any(
                    q.row.arch == j.row.arch for q in queue + running
                ):
                    models.drop(j.row.arch)
        while queue and len(running) < max(1, parallel):
            j = queue[0]
            need = j.predicted["nvml"] * 1.3
            used = sum(r.predicted["nvml"] * 1.3 for r in running)
            if running and used + need > capacity:
                break
            if time.monotonic() + 30 > deadline:
                for q in queue:
                    q.result = {"status": "skipped: past the part's time budget"}
                queue.clear()
                break
            models.request(j.row.arch)
            if j.row.arch not in models.ready:
                break
            if len(queue) > 1:  # build the next architecture while this row trains
                models.request(queue[1].row.arch)
            queue.pop(0)
            say(f"memory {j.row.id}: {j.row.label} (predicted {gib(j.predicted['reserved'])})")
            # --force: rows side by side shrink the free memory each plan sees; the fit gate
            # must not refuse a row because of its neighbours (the prediction is the same).
            j.replay = Replay(
                j.session, j.session.parent / "runs", overrides=overrides, force=force
            )
            j.replay.timeout = timeout  # type: ignore[attr-defined]
            running.append(j)
        for j in running:
            if j.replay is not None and time.monotonic() - j.replay.t0 > timeout:
                j.replay.kill()
        if not queue and not running:
            break
        if models._pending is not None and not running:
            models.poll(block=True)
        time.sleep(0.2)


def finish_row(job: RowJob, nvml: NvmlSampler) -> None:
    assert job.replay is not None
    pid = job.replay.runner_pid()
    res = job.replay.wait(timeout=5)
    m = measured(res)
    launched = launched_plan(res, job.predicted)
    if nvml.gpu is not None:  # on the CPU the real architecture's prediction stays
        job.predicted = launched
    pred = job.predicted
    nv = nvml.peak(pid)
    how = "pid"
    if nv is None and nvml.gpu is not None:
        nv, how = nvml.peak_between(job.replay.t0, time.monotonic())
    elif nv is not None:
        nvml.claimed.add(pid)
    nv = nv or None  # some drivers report 0 per process inside a container: unknown
    r: dict[str, Any] = {
        "status": m["final"],
        "message": m["message"],
        "steps": m["steps"],
        "seconds": res["seconds"],
        "measured_reserved": m["reserved"],
        "measured_nvml": nv,
        "nvml_match": how,
        "launched": _memory_fields(res["spec"]),
        "run": res["run"],
    }
    if res["spec"] and launched.get("spec"):
        r["plan_matches_launch"] = launched["spec"] == r["launched"]
    if launched is not job.predicted:
        r["launched_plan_reserved"] = launched["reserved"]
    if nvml.gpu is not None and m["reserved"]:
        r["error_pct"] = round(100 * (pred["reserved"] - m["reserved"]) / m["reserved"], 1)
        if nv:
            r["nvml_error_pct"] = round(100 * (pred["nvml"] - nv) / nv, 1)
    if m["final"] != "finished":
        r["log_tail"] = res["log_tail"]
    job.result = r
    say(
        f"memory {job.row.id}: {m['final']} in {res['seconds']} s, reserved "
        f"{gib(m['reserved'])} vs predicted {gib(pred['reserved'])}"
        + (f" ({r['error_pct']:+.1f}%)" if "error_pct" in r else "")
    )
    if res["run"]:  # keep events, spec and logs; drop weights and checkpoints (disk)
        for sub in ("checkpoints", "adapter"):
            shutil.rmtree(Path(res["run"]) / sub, ignore_errors=True)


def launched_plan(res: dict[str, Any], predicted: dict[str, Any]) -> dict[str, Any]:
    """The prediction of the plan the replay itself launched (``RUN/plan.json``) where the
    replay writes one; the script's own prediction otherwise."""
    path = Path(res["run"]) / "plan.json" if res.get("run") else None
    if path is None or not path.is_file():
        return predicted
    try:
        plan = json.loads(path.read_text())
    except ValueError:
        return predicted
    est = plan.get("estimate") or {}
    if not est:
        return predicted
    return {
        **predicted,
        "source": "plan.json (the plan replay launched)",
        "reserved": int(est["peak_reserved"]),
        "nvml": int(est["nvidia_smi_used"]),
        "verdict": plan.get("verdict", ""),
        "spec": _memory_fields(plan.get("spec") or {}),
    }


def memory_summary(jobs: list[RowJob]) -> dict[str, Any]:
    errs = [(j.row.id, abs(j.result["error_pct"])) for j in jobs if "error_pct" in j.result]
    if not errs:
        return {"rows_measured": 0, "worst_pct": None, "mean_pct": None, "goal_met": None}
    worst = max(errs, key=lambda x: x[1])
    mean = sum(e for _, e in errs) / len(errs)
    return {
        "rows_measured": len(errs),
        "worst_pct": round(worst[1], 1),
        "worst_row": worst[0],
        "mean_pct": round(mean, 1),
        "goal_met": worst[1] <= 10 and mean < 5,
    }


# --------------------------------------------------------------------------------------
# Part 4: OOM
# --------------------------------------------------------------------------------------


def run_oom(
    case: cfgs.OomCase, work: Path, models: Models, nvml: NvmlSampler, *, gpu: Gpu | None
) -> dict[str, Any]:
    """Replay the forced-over-capacity session; judge its events."""
    d = work / "oom"
    path = models.get(case.arch)
    data, index = oom_data(case, models.vocab(case.arch), d)
    session = write_session(
        d / "session.json", model=path, train=[data], spec=case.spec(), name="gpu proof: OOM"
    )
    pred = predict(session, gpu=gpu, dry=gpu is None)
    force = replay_supports("--force")
    overrides = {} if gpu else dry_overrides()
    say(
        f"oom: {case.arch} {case.method} micro {case.micro} x accum {case.accum}, long row "
        f"({case.long_len} tokens) at data index {index} for step {case.oom_step}; "
        f"predicted {gib(pred['reserved'])}"
    )
    res = Replay(session, d / "runs", overrides=overrides, force=force).wait(
        timeout=180 if gpu else 900
    )
    pred = launched_plan(res, pred)
    events = res["events"]
    steps = [e for e in events if e.get("type") == "step"]
    per_step = case.micro * case.accum
    out: dict[str, Any] = {
        "case": {**case.__dict__, "short_len": list(case.short_len)},
        "predicted_reserved": pred["reserved"],
        "verdict": pred.get("verdict"),
        "force_flag": force,
        "long_row_index": index,
        "final": measured(res)["final"],
        "seconds": res["seconds"],
    }
    # Where the long row was served: the step whose real tokens jump by about long_len.
    seen = {}
    prev = 0
    for e in steps:
        tok = int(e.get("tokens_seen") or 0)
        if tok < prev:  # a restart counts again from its checkpoint's total
            prev = 0
        seen[e["step"]] = tok - prev
        prev = tok
    typical = statistics.median(seen.values()) if seen else 0
    long_steps = sorted(s for s, t in seen.items() if t - typical > case.long_len * 0.5)
    out["long_row_step"] = long_steps[0] if long_steps else None
    ooms = [e for e in events if e.get("type") == "oom"]
    starts = [e for e in events if e.get("type") == "start"]
    ckpts = [e.get("step") for e in events if e.get("type") == "checkpoint"]
    out["oom_events"] = ooms
    out["checkpoints"] = ckpts
    out["starts"] = [
        {k: e.get(k) for k in ("start_step", "resumed_from", "total_steps")} for e in starts
    ]
    launched = res["spec"]
    out["final_micro"] = launched.get("per_device_train_batch_size")
    out["final_accum"] = launched.get("gradient_accumulation_steps")
    out["events_tail"] = [{k: v for k, v in e.items() if k not in ("spec",)} for e in events[-6:]]
    if gpu is None:
        out["placement_ok"] = out["long_row_step"] == case.oom_step
        say(
            f"oom (dry): the long row came at step {out['long_row_step']} "
            f"(expected {case.oom_step}): {'ok' if out['placement_ok'] else 'MISMATCH'}"
        )
        return out
    oom = ooms[0] if ooms else {}
    retried_micro = [e.get("micro_batch") for e in ooms]
    effective = (out["final_micro"] or 0) * (out["final_accum"] or 0)
    resumed = [s for s in out["starts"][1:] if (s.get("start_step") or 0) > 0]
    out["checks"] = {
        "oom_event": bool(ooms),
        "advice": bool(oom.get("advice")),
        "oom_after_checkpoint": bool(ooms) and any(c < (oom.get("step") or 0) for c in ckpts),
        "continued_from_checkpoint": bool(resumed),
        "smaller_micro": bool(out["final_micro"]) and out["final_micro"] < case.micro,
        "same_effective_batch": effective == per_step,
        "finished": out["final"] == "finished",
    }
    out["oom_micro_batches"] = retried_micro
    say(f"oom: {json.dumps(out['checks'])}")
    shutil.rmtree(Path(res["run"] or d / "none") / "checkpoints", ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------
# Part 3: QLoRA end to end
# --------------------------------------------------------------------------------------


def run_qlora_e2e(
    case: cfgs.QloraE2E, work: Path, models: Models, nvml: NvmlSampler, *, gpu: Gpu | None
) -> dict[str, Any]:
    """Train + evaluate (replay), chat one message, export merged; each step's peak."""
    d = work / "qlora-e2e"
    path = models.get(case.arch)
    vocab = models.vocab(case.arch)
    rows, _ = chat_data.chat_rows(case.train_rows, (64, case.seq), seed=5, vocab=vocab)
    evals, _ = chat_data.chat_rows(case.eval_rows, (32, 96), seed=6, vocab=vocab)
    train = chat_data.write_jsonl(d / "train.jsonl", rows)
    ev = chat_data.write_jsonl(d / "eval.jsonl", evals)
    evaluation = {"task": "exact_match", "eval_file": str(ev), "max_new_tokens": 16, "limit": 8}
    session = write_session(
        d / "session.json",
        model=path,
        train=[train],
        spec=case.spec(),
        name="gpu proof: QLoRA end to end",
        evaluation=evaluation,
    )
    pred = predict(session, gpu=gpu, dry=gpu is None)
    out: dict[str, Any] = {"case": case.__dict__, "predicted_reserved": pred["reserved"]}
    if gpu is None:
        out["status"] = "built only (QLoRA needs CUDA)"
        return out
    steps: dict[str, Any] = {}
    base = nvml.device_used() or 0
    nvml.reset_device_peak()
    rep = Replay(session, d / "runs")
    res = rep.wait(timeout=300)
    m = measured(res)
    steps["train+evaluate"] = {
        "status": m["final"],
        "seconds": res["seconds"],
        "train_reserved": m["reserved"],
        "device_peak_nvml": (nvml.device_peak or 0) - base,
    }
    run = res["run"]
    if m["final"] != "finished" or run is None:
        steps["train+evaluate"]["log_tail"] = res["log_tail"]
        out["steps"] = steps
        return out
    results = Path(run) / "eval" / "results.json"
    steps["train+evaluate"]["eval_results"] = results.is_file()
    for name, cmd, stdin in (
        (
            "chat",
            ["chat", run, "--plain", "--max-new-tokens", str(case.chat_tokens)],
            case.chat_message + "\n/quit\n",
        ),
        ("export merged", ["export", run, "-f", "merged"], None),
    ):
        nvml.reset_device_peak()
        t = time.monotonic()
        p = subprocess.run(
            [sys.executable, "-m", "tuitune", *cmd],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=child_env(),
            timeout=180,
        )
        steps[name] = {
            "exit": p.returncode,
            "seconds": round(time.monotonic() - t, 1),
            "device_peak_nvml": (nvml.device_peak or 0) - base,
            "output_tail": (p.stdout + p.stderr)[-800:],
        }
    from tuitune.core.hardware.estimate import ModelShape, TrainSetup, estimate

    shape = ModelShape.from_config(cfgs.arch_config(case.arch))
    w4 = estimate(shape, TrainSetup(method="qlora")).components["weights"]
    w16 = estimate(shape, TrainSetup(method="lora")).components["weights"]
    out["weights_4bit"] = w4
    out["weights_bf16"] = w16
    out["steps"] = steps
    say(f"qlora e2e: {json.dumps({k: v.get('status', v.get('exit')) for k, v in steps.items()})}")
    return out


# --------------------------------------------------------------------------------------
# Part 2: speed
# --------------------------------------------------------------------------------------


def run_speed(
    work: Path, *, gpu: Gpu | None, deadline: float, dry: bool, names: list[str]
) -> list[dict[str, Any]]:
    """throughput.py's cases through its interleaved arms (tuitune's arm is a replay)."""
    import throughput

    out = []
    for case in cfgs.SPEED:
        if case.name not in names:
            continue
        if dry:
            out.append(throughput.dry_check(case, work / "speed" / case.name))
            continue
        if time.monotonic() + 60 > deadline:
            out.append({"case": case.name, "status": "skipped: past the part's time budget"})
            continue
        device = gpu.device() if gpu else throughput.cpu_device()
        result = throughput.run_case(
            case, work / "speed" / case.name, device, None, repeats=case.repeats
        )
        result["goal"] = case.goal
        result["peak_flops"] = peak_tflops(gpu)
        out.append(result)
        if gpu is not None:  # weights and checkpoints of this case: the disk is 64 GiB
            for sub in (work / "speed" / case.name).glob("*"):
                if sub.is_dir():
                    shutil.rmtree(sub, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def gib(n: Any) -> str:
    return f"{n / GiB:.2f} GiB" if isinstance(n, (int, float)) and n else "n/a"


def pct(x: Any) -> str:
    return f"{x:+.1f}%" if isinstance(x, (int, float)) else "n/a"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# tuitune GPU proof ({report['mode']})", ""]
    env = report["env"]
    lines.append(
        f"Device: {env['device']}; plan: {env['plan']}; seed {report['seed']}; "
        f"wall {report['seconds']:.0f} s. "
        + (
            "CPU dry run: no figure here is a GPU figure (a replayed row's measured memory is "
            "the runner's CPU RSS; predictions are for the real architecture on an H100)."
            if report["dry_run"]
            else ""
        )
    )
    if report.get("memory"):
        lines += [
            "",
            "## Memory (predicted vs measured peak, through tuitune replay)",
            "",
            "| id | configuration | random | launched (mb / ckpt / pack / attn) | predicted "
            "reserved | measured reserved | error | predicted NVML | NVML peak | error | "
            "status |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["memory"]["rows"]:
            res, pred, la = r["result"], r["predicted"], r["result"].get("launched") or {}
            launched = (
                f"{la.get('per_device_train_batch_size')} / {la.get('gradient_checkpointing')}"
                f" / {la.get('packing')} / {la.get('attn_implementation') or 'auto'}"
                if la
                else ""
            )
            lines.append(
                f"| {r['row']['id']} | {r['label']} | {'yes' if r['row']['random'] else ''} | "
                f"{launched} | {gib(pred['reserved'])} | {gib(res.get('measured_reserved'))} | "
                f"{pct(res.get('error_pct'))} | {gib(pred['nvml'])} | "
                f"{gib(res.get('measured_nvml'))} | {pct(res.get('nvml_error_pct'))} | "
                f"{res.get('status', '')} |"
            )
        s = report["memory"]["summary"]
        lines += [
            "",
            f"Rows measured: {s['rows_measured']}; worst {pct(s.get('worst_pct'))} "
            f"({s.get('worst_row', '-')}); mean |error| {pct(s.get('mean_pct'))}; goal (every "
            f"row within 10%, mean under 5%): {s.get('goal_met')}. Random rows drawn with seed "
            f"{report['seed']}: {', '.join(report['memory']['random_ids'])}.",
        ]
    if report.get("oom"):
        o = report["oom"]
        lines += ["", "## OOM (plan forced over capacity, auto_oom_retry)", ""]
        lines.append(
            f"Predicted {gib(o.get('predicted_reserved'))} (verdict {o.get('verdict') or '-'}); "
            f"long row served at step {o.get('long_row_step')} (planned "
            f"{o['case']['oom_step']}); final: {o.get('final')}; micro-batch "
            f"{o['case']['micro']} -> {o.get('final_micro')}, accumulation "
            f"{o['case']['accum']} -> {o.get('final_accum')}."
        )
        for k, v in (o.get("checks") or {}).items():
            lines.append(f"- {k}: {v}")
        for e in o.get("oom_events", [])[:3]:
            lines.append(f"- oom event at step {e.get('step')}: {e.get('advice')}")
    if report.get("speed"):
        lines += [
            "",
            "## Speed (plain TRL vs tuitune replay with its plan, same data)",
            "",
            "| case | arm | real tok/s (median, min-max) | x | peak memory | x | MFU | "
            "real tokens | goal |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in report["speed"]:
            if "arms" not in c:
                lines.append(f"| {c.get('case')} | | {c.get('status', '')} | | | | | | |")
                continue
            b = c["arms"]["baseline"]
            for arm, a in c["arms"].items():
                mfu = f"{a['mfu']:.1%}" if a.get("mfu") else "n/a"
                goal = f"{c.get('goal')}x: {c['speedup'] >= c['goal']}" if arm == "tuitune" else ""
                lines.append(
                    f"| {c['case']['name']} | {arm} | {a['tokens_per_s']:,.0f} "
                    f"({a['tokens_per_s_min']:,.0f}-{a['tokens_per_s_max']:,.0f}) | "
                    f"{a['tokens_per_s'] / b['tokens_per_s']:.2f} | {gib(a['peak_bytes'])} | "
                    f"{a['peak_bytes'] / b['peak_bytes']:.2f} | {mfu} | {a['real_tokens']:,} | "
                    f"{goal} |"
                )
    if report.get("qlora"):
        q = report["qlora"]
        lines += ["", "## QLoRA end to end", ""]
        if "steps" not in q:
            lines.append(f"{q.get('status')}")
        else:
            lines.append(
                f"4-bit weights {gib(q.get('weights_4bit'))}, bf16 would be "
                f"{gib(q.get('weights_bf16'))}."
            )
            for name, s in q["steps"].items():
                lines.append(
                    f"- {name}: {s.get('status', s.get('exit'))} in {s.get('seconds')} s, GPU "
                    f"peak {gib(s.get('device_peak_nvml'))} (NVML, above idle)"
                    + (
                        f", train reserved {gib(s.get('train_reserved'))}"
                        if s.get("train_reserved")
                        else ""
                    )
                )
    if report.get("problems"):
        lines += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def row_report(j: RowJob) -> dict[str, Any]:
    return {
        "row": j.row.to_dict(),
        "label": j.row.label,
        "predicted": j.predicted,
        "result": {k: v for k, v in j.result.items()},
    }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("memory", "speed", "all"), default="all")
    p.add_argument("--dry-run", action="store_true", help="CPU: build everything, replay a few")
    p.add_argument("--no-launch", action="store_true", help="dry run without any replay")
    p.add_argument("--dry-launch", nargs="*", default=[], help="more rows the dry run replays")
    p.add_argument("--out", type=Path, help="where the JSON and Markdown go (default: work)")
    p.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    p.add_argument("--seed", type=int, help="seed of the random rows (default: the clock)")
    p.add_argument("--parallel", type=int, default=4, help="memory rows side by side (GPU)")
    p.add_argument("--rows", nargs="*", help="only these memory row ids")
    p.add_argument("--case", action="append", help="only these speed cases")
    p.add_argument("--budget", type=float, help="seconds this invocation may take")
    p.add_argument("--build-server", help=argparse.SUPPRESS)
    p.add_argument("--check-imports", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build_server:
        return build_server(args.build_server)
    if args.check_imports:
        print("IMPORTS " + json.dumps(check_imports(args.check_imports == "gpu")), flush=True)
        return 0

    t_start = time.monotonic()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    dry = args.dry_run
    gpu = None if dry else Gpu.probe()
    if gpu is None and not dry:
        say("no GPU found through NVML: run with --dry-run on a CPU")
        return 2
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    work = args.work or Path(tempfile.mkdtemp(prefix="tuitune-gpu-proof-"))
    out_dir = args.out or work
    out_dir.mkdir(parents=True, exist_ok=True)
    budget_default = cfgs.Budget()
    part_budget = args.budget or (
        budget_default.memory_part if args.part != "speed" else budget_default.speed_part
    )
    if args.part == "all" and not args.budget:
        part_budget = budget_default.memory_part + budget_default.speed_part
    deadline = t_start + part_budget

    check = ImportCheck(gpu is not None)
    # On the GPU a missing wheel must stop the run before any device time is spent.
    imports = check.result() if gpu is not None else None
    plan = plan_module()
    say(
        f"gpu proof: {'DRY RUN on CPU' if dry else gpu.name}, part {args.part}, seed {seed}, "
        f"work {work}, plan: {'tuitune.core.training.plan' if plan else 'absent (estimator fallback)'}"
    )
    problems: list[str] = []
    if imports is not None and imports["missing"]:
        for m in imports["missing"]:
            say(f"import missing: {m}")
        return 2
    report: dict[str, Any] = {
        "schema": 1,
        "mode": "dry run (CPU)" if dry else f"GPU ({gpu.name})",
        "dry_run": dry,
        "part": args.part,
        "seed": seed,
        "env": {
            "device": "CPU (dry run)" if dry else f"{gpu.name}, {gpu.total / GiB:.1f} GiB",
            "plan": "tuitune.core.training.plan" if plan else "estimator (plan not in this tree)",
            "python": sys.version.split()[0],
        },
        "problems": problems,
    }
    nvml = NvmlSampler(gpu).start()
    models = Models(work, gpu=gpu is not None)
    try:
        if args.part in ("memory", "all"):
            rows = list(cfgs.FIXED) + cfgs.draw_random(seed)
            random_ids = [f"{r.id} ({r.label})" for r in rows if r.random]
            say(f"random rows (seed {seed}): " + "; ".join(random_ids))
            if args.rows:
                rows = [r for r in rows if r.id in args.rows]
            rows.sort(key=lambda r: models.bytes_on_disk(r.arch))
            jobs = prepare_rows(rows, work, models, gpu=gpu, dry=dry)
            for j in jobs:
                extra = f" ({j.predicted['plan_error']})" if "plan_error" in j.predicted else ""
                say(
                    f"built {j.row.id}: {j.row.label}: {j.predicted['source']} predicts "
                    f"{gib(j.predicted['reserved'])} reserved{extra}"
                )
                if "plan_error" in j.predicted:
                    problems.append(f"{j.row.id}: plan failed: {j.predicted['plan_error']}")
            launch = None
            if dry:
                launch = set() if args.no_launch else {*DRY_LAUNCH, *args.dry_launch}
            run_memory(
                jobs,
                models,
                nvml,
                gpu=gpu,
                parallel=args.parallel if gpu else 1,
                deadline=deadline - (cfgs.Budget().extras["oom"] if gpu else 0),
                timeout=budget_default.row_timeout if gpu else 900,
                launch=launch,
                keep=frozenset({cfgs.OomCase().arch, cfgs.QloraE2E().arch}),
            )
            for j in jobs:
                status = str(j.result.get("status", ""))
                launched = launch is None or j.row.id in launch
                if launched and status != "finished" and not status.startswith("skipped"):
                    problems.append(f"{j.row.id}: {status}")
            report["memory"] = {
                "rows": [row_report(j) for j in jobs],
                "summary": memory_summary(jobs),
                "random_ids": random_ids,
            }
            if not (dry and args.no_launch):
                oom_case = cfgs.OomCase()
                if dry:
                    oom_case = oom_case.scaled(long_len=512, micro=8, short_len=(24, 48))
                report["oom"] = run_oom(oom_case, work, models, nvml, gpu=gpu)
                if dry and not report["oom"].get("placement_ok"):
                    problems.append("oom: the long row did not come at the planned step")
        if args.part in ("speed", "all"):
            # The small cases, then QLoRA end to end, then the 7B case (the longest): what
            # would start past the budget is listed as skipped.
            names = [c.name for c in cfgs.SPEED if not args.case or c.name in args.case]
            small, large = [n for n in names if "7b" not in n], [n for n in names if "7b" in n]
            report["speed"] = run_speed(work, gpu=gpu, deadline=deadline, dry=dry, names=small)
            if not (dry and args.no_launch) and not args.case:
                if time.monotonic() + 60 > deadline:
                    report["qlora"] = {"status": "skipped: past the part's time budget"}
                else:
                    report["qlora"] = run_qlora_e2e(cfgs.QloraE2E(), work, models, nvml, gpu=gpu)
            if large:
                report["speed"] += run_speed(work, gpu=gpu, deadline=deadline, dry=dry, names=large)
    finally:
        models.close()
        nvml.stop()
    imports = imports or check.result()
    report["env"]["imports"] = imports
    problems += imports["missing"]
    for m in imports["missing"]:
        say(f"import missing: {m}")
    for m in imports["optional_missing"]:
        say(f"optional import missing: {m}")
    report["seconds"] = round(time.monotonic() - t_start, 1)
    name = f"gpu_proof-{args.part}{'-dry' if dry else ''}"
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    text = markdown(report)
    (out_dir / f"{name}.md").write_text(text)
    say("")
    say(text)
    say(f"wrote {out_dir / name}.json and .md in {report['seconds']:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
