"""Helpers the wizard's tests share: a recorded run's events, a small data file, settling
workers, and the App on a throw-away session. Pilot waits use Textual's own ``wait_for_*``
where it has one."""

from __future__ import annotations

import json
from pathlib import Path

from tuitune.core.runs.rundir import RunDir
from tuitune.tui.app import TuituneApp
from tuitune.tui.defaults import new_session

QUICKSTART = Path(__file__).resolve().parent.parent / "assets" / "quickstart" / "train.jsonl"
T0 = 1_790_000_000.0


def recorded_events(steps: int = 20, *, final: str | None = "finished") -> list[dict]:
    """A deterministic events.jsonl as the runner writes it (protocol v1)."""
    ev = [
        {"v": 1, "type": "log", "time": T0, "message": "loading lora trainer"},
        {
            "v": 1,
            "type": "start",
            "time": T0 + 1,
            "run_id": "run-fixture",
            "method": "lora",
            "model": "SmolLM2-135M-Instruct",
            "pid": 1,
            "total_steps": steps,
        },
    ]
    for s in range(1, steps + 1):
        ev.append(
            {
                "v": 1,
                "type": "step",
                "time": T0 + 1 + 2 * s,
                "step": s,
                "epoch": s / steps,
                "loss": round(2.5 * 0.88**s + 0.4, 4),
                "learning_rate": 2e-4 * (1 - s / steps),
                "grad_norm": 1.0,
                "tokens_per_second": 850.0,
                "tokens_seen": 512 * s,
                "memory_gib": 1.5,
                "gpu_util": None,
            }
        )
        if s % 5 == 0:
            ev.append(
                {
                    "v": 1,
                    "type": "eval",
                    "time": T0 + 2 + 2 * s,
                    "step": s,
                    "eval_loss": round(2.6 * 0.9**s + 0.5, 4),
                }
            )
    if final == "finished":
        ev.append(
            {
                "v": 1,
                "type": "finished",
                "time": T0 + 3 + 2 * steps,
                "step": steps,
                "adapter_dir": "adapter",
                "train_runtime": 2.0 * steps,
            }
        )
    return ev


def write_run(root: Path, events: list[dict]) -> RunDir:
    run = RunDir(root)
    root.mkdir(parents=True, exist_ok=True)
    run.events.write_text("".join(json.dumps(e) + "\n" for e in events))
    run.log.write_text("training...\n{'loss': 0.5}\n")
    return run


def small_data(tmp_path: Path, n: int = 40) -> Path:
    lines = QUICKSTART.read_text().splitlines()[:n]
    p = tmp_path / "small.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


async def settle(pilot, rounds: int = 3) -> None:
    """Let workers finish and post their results (the plan, the probe, the model check)."""
    import contextlib

    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        with contextlib.suppress(WorkerCancelled):  # an exclusive worker replaced by a newer one
            await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)


def make_app(tmp_path: Path, *, model: Path | None = None, step: str = "start", **kw) -> TuituneApp:
    session = new_session()
    session.path = str(tmp_path / "session.json")
    session.data.train = [str(small_data(tmp_path))]
    session.spec = {}  # TrainSpec's seed defaults, not the quickstart's tuned values
    if model is not None:
        session.model.ref = str(model)
    return TuituneApp(session, start_step=step, **kw)
