"""End to end in a real terminal (tmux): Enter through every step on the default model with a
very short run, read the Evaluate screen; then SIGKILL the app mid-run and re-attach.

Slow: real training and evaluation of SmolLM2-135M on the CPU.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tuitune.tui.defaults import new_session

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    """One detached tmux server (its own socket) running one command at a fixed size."""

    def __init__(self, command: str, *, env: dict[str, str], size: tuple[int, int] = (100, 30)):
        self.socket = f"tuitune-e2e-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
            f"env {exports} {command}; sleep 600",
        )

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "e2e", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "e2e")

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.25)
        raise AssertionError(f"{text!r} not shown within {timeout:.0f}s; screen:\n{self.screen()}")

    def pane_pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", "e2e", "#{pane_pid}").strip())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _session_file(tmp_path: Path, **spec: object) -> Path:
    s = new_session()
    s.spec.update(
        {
            "max_steps": 2,
            "max_length": 256,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "gradient_checkpointing": False,
            "eval_steps": 1000,  # no validation pass inside so short a run
            **spec,
        }
    )
    s.data.val_ratio = 0.02  # ~9 validation rows: the end-of-run validation stays short
    s.evaluation.limit = 6
    s.evaluation.max_new_tokens = 48
    return s.save(tmp_path / "quick.json")


def _env(home: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return {**keep, "TUITUNE_HOME": str(home), "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color"}


def _wizard(session: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m tuitune wizard --session {shlex.quote(str(session))}"


def test_enter_through_the_wizard_trains_and_evaluates(
    tmp_path: Path, tuitune_home: Path, default_model: Path
) -> None:
    session = _session_file(tmp_path)
    tmux = Tmux(_wizard(session), env=_env(tuitune_home))
    try:
        tmux.wait_for("2/9 Decide", 15)
        tmux.keys("Enter")
        tmux.wait_for("Plan: lora", 120)
        tmux.keys("Enter")
        tmux.wait_for("4/9 Model", 10)
        tmux.keys("Enter")
        tmux.wait_for("validation rows", 120)
        tmux.keys("Enter")
        tmux.wait_for("Loss:", 120)
        tmux.keys("Enter")
        shown = tmux.wait_for("Plan: lora", 120)
        assert "memory " in shown and "micro-batch" in shown  # the plan's figure, its assumptions
        tmux.keys("Enter")
        tmux.wait_for("8/9 Train", 10)
        tmux.keys("Enter")
        shown = tmux.wait_for("FINISHED", 1200)  # minutes on a CPU shared with other jobs
        assert "step 2/2" in shown
        tmux.keys("Enter")
        shown = tmux.wait_for("Evaluated run", 1200)
        assert "metric" in shown and "before" in shown and "after" in shown
        print(shown)
    finally:
        tmux.close()
        _stop_all(tuitune_home)


def _stop_all(home: Path) -> None:
    """The runs outlive the app by design: stop what a failed test left going."""
    from tuitune.core.runs.process import list_runs, stop_run

    for info in list_runs(home / "data" / "runs"):
        if info.state == "running":
            stop_run(info.run, timeout=30, force=True)


def test_sigkill_leaves_the_run_going_and_attach_shows_the_curve(
    tmp_path: Path, tuitune_home: Path, default_model: Path
) -> None:
    from tuitune.core.runs.events import RunCurves, read_events
    from tuitune.core.runs.process import run_state, stop_run
    from tuitune.core.runs.rundir import RunDir

    session = _session_file(tmp_path, max_steps=6, eval_steps=0)
    tmux = Tmux(_wizard(session) + " --step train", env=_env(tuitune_home))
    run = None
    try:
        tmux.wait_for("8/9 Train", 15)
        tmux.keys("Enter")
        tmux.wait_for("step 1/6", 240)
        runs = sorted((tuitune_home / "data" / "runs").iterdir())
        run = RunDir(runs[-1])
        # SIGKILL the app (the pane's shell runs env -> python; kill every python child of it)
        app_pids = subprocess.run(
            ["pgrep", "-f", f"tuitune wizard --session {session}"], capture_output=True, text=True
        ).stdout.split()
        assert app_pids
        for pid in app_pids:
            os.kill(int(pid), signal.SIGKILL)
        time.sleep(1.0)
        assert run_state(run) == "running"
        seen = RunCurves().extend(read_events(run.events)).train_steps
        tmux.close()
        attach = f"{shlex.quote(sys.executable)} -m tuitune attach {shlex.quote(str(run.root))}"
        tmux = Tmux(attach, env=_env(tuitune_home))
        shown = tmux.wait_for("8/9 Train", 15)
        # the header shows the total once the replayed start event has been folded in
        tmux.wait_for("/6", 30)
        step_now = RunCurves().extend(read_events(run.events)).train_steps
        assert len(step_now) >= len(seen) >= 1  # the whole curve so far, replayed
        shown = tmux.wait_for("FINISHED", 400)
        assert "step 6/6" in shown
    finally:
        tmux.close()
        if run is not None and run_state(run) == "running":
            stop_run(run, timeout=30, force=True)
