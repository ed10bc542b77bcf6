"""Optional experiment trackers, passed to TRL as ``report_to`` (off by default).

``events.jsonl`` is always written by the runner; trackers come on top, only when the user
lists them in ``TrainSpec.report_to``. Nothing leaves the machine unless a tracker that sends
data is chosen: TensorBoard writes local files; trackio keeps a local database unless a Space
is configured; Weights & Biases uploads unless ``WANDB_MODE=offline``. ``check_report_to``
turns a missing package or a typo into a one-line error before the child starts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tuitune.core.errors import TuituneError
from tuitune.core.runs.rundir import RunDir

TRACKERS = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "trackio": ("trackio", "pip install trackio"),
    "wandb": ("wandb", "pip install wandb"),
}


def check_report_to(report_to: list[str] | tuple[str, ...]) -> None:
    """Refuse unknown trackers and trackers whose package is not installed."""
    for name in report_to:
        if name in ("none", ""):
            continue
        if name not in TRACKERS:
            raise TuituneError(
                f"unknown tracker {name!r}", fix=f"use {', '.join(TRACKERS)} (or none)"
            )
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise TuituneError(f"tracker {name!r} is not installed", fix=install)


def tensorboard_dir(run: RunDir) -> Path:
    """Where transformers' TensorBoard callback writes (under the Trainer's output_dir)."""
    env = os.environ.get("TENSORBOARD_LOGGING_DIR")
    return Path(env).expanduser() if env else run.checkpoints / "runs"


def where_it_goes(name: str, run: RunDir | None = None) -> str:
    """One line per tracker saying where its data goes (shown before a run starts)."""
    if name == "tensorboard":
        where = tensorboard_dir(run) if run else "RUN/checkpoints/runs"
        return f"tensorboard: local files in {where} (tensorboard --logdir {where})"
    if name == "trackio":
        space = os.environ.get("TRACKIO_SPACE_ID")
        return (
            f"trackio: sent to the Space {space}"
            if space
            else "trackio: local database (trackio show); nothing is sent"
        )
    if name == "wandb":
        offline = os.environ.get("WANDB_MODE") in ("offline", "disabled")
        return (
            "wandb: offline files (wandb sync uploads them later)"
            if offline
            else "wandb: sent to Weights & Biases (set WANDB_MODE=offline to keep it local)"
        )
    return f"{name}: unknown tracker"
