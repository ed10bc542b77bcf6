"""Benchmarks run tuitune the way a user does: a session file, replayed by ``python -m tuitune
replay`` in a child process; the results are read back from the run's own files
(``events.jsonl``, ``spec.json``, ``run.json``). Shared by ``gpu_proof.py`` and
``throughput.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def plan_module() -> Any:
    """``tuitune.core.training.plan`` where it is in this tree, else None (estimator fallback)."""
    try:
        return importlib.import_module("tuitune.core.training.plan")
    except ImportError:
        return None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [env.get("PYTHONPATH", ""), str(ROOT)] if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def write_session(
    path: Path,
    *,
    model: Path,
    train: list[Path],
    spec: dict[str, Any],
    name: str,
    evaluation: dict[str, Any] | None = None,
) -> Path:
    from tuitune.core.session import DataChoice, EvalChoice, ModelChoice, Session

    session = Session(
        id=path.stem,
        name=name,
        model=ModelChoice(ref=str(model)),
        # Synthetic letters: PII patterns could take a long run of letters for a token, and
        # near-duplicate search (datasketch, which needs scipy: too big to carry to the GPU
        # machine) has nothing to find in random text. Every other curation step stays on.
        data=DataChoice(
            train=[str(p) for p in train],
            val_ratio=0.0,
            curation={"pii": "off", "dedup_near": False},
        ),
        evaluation=EvalChoice(**(evaluation or {})),
        spec=spec,
    )
    session.save(path)
    return path


class Replay:
    """``python -m tuitune replay SESSION --out DIR [--set ...] [--force]`` in the background."""

    def __init__(
        self,
        session: Path,
        out: Path,
        *,
        overrides: dict[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "tuitune", "replay", str(session), "--out", str(out)]
        for k, v in (overrides or {}).items():
            cmd += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
        if force:
            cmd.append("--force")
        self.cmd = cmd
        self.log = out / "replay.log"
        self._log = open(self.log, "w")  # noqa: SIM115 - closed in wait()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env()
        )

    def run_dir(self) -> Path | None:
        dirs = [p for p in self.out.iterdir() if p.is_dir()]
        return dirs[0] if len(dirs) == 1 else None

    def runner_pid(self) -> int | None:
        run = self.run_dir()
        if run is None or not (run / "run.json").is_file():
            return None
        with contextlib.suppress(ValueError, OSError):
            return json.loads((run / "run.json").read_text()).get("pid")
        return None

    def done(self) -> bool:
        return self.proc.poll() is not None

    def kill(self) -> None:
        pid = self.runner_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, 9)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def wait(self, timeout: float) -> dict[str, Any]:
        try:
            code = self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        self._log.close()
        run = self.run_dir()
        events = read_events(run / "events.jsonl") if run else []
        spec = {}
        if run and (run / "spec.json").is_file():
            spec = json.loads((run / "spec.json").read_text())
        return {
            "exit": code,
            "seconds": round(time.monotonic() - self.t0, 1),
            "run": str(run) if run else None,
            "events": events,
            "spec": spec,
            "log_tail": self.log.read_text(errors="replace")[-1500:],
        }


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out
