"""Helpers the training child's tests share: people to extract, a spec on the tiny model,
training it in-process, and its events of one kind. The ``data`` fixture is in conftest."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tuitune.core.runs.events import read_events
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec

NAMES = ["Ada", "Bob", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]
CITIES = ["Oslo", "Rome", "Lima", "Kyiv"]


def people(n: int, seed: int) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    return [(rng.choice(NAMES), rng.randint(20, 80), rng.choice(CITIES)) for _ in range(n)]


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def make_spec(model: Path, data: dict[str, str], root: Path, **kw) -> TrainSpec:
    base = dict(
        model=str(model),
        method="lora",
        train_file=data["train"],
        eval_file=data["eval"],
        output_dir=str(root),
        max_steps=4,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_length=128,
        gradient_checkpointing=False,
        learning_rate=1e-2,
        save_steps=2,
        use_cpu=True,  # these tests train on the CPU; a spec planned for a GPU is refused
    )
    base.update(kw)
    return TrainSpec(**base)


def train(spec: TrainSpec, *, resume: bool = False, signals: bool = False) -> tuple[int, RunDir]:
    from tuitune.runner.train import run_child

    run = RunDir(Path(spec.output_dir))
    run.root.mkdir(parents=True, exist_ok=True)
    run.spec.write_text(spec.to_json())
    return run_child(run.spec, resume=resume, signals=signals), run


def of(run: RunDir, kind: str) -> list[dict]:
    return [e for e in read_events(run.events) if e["type"] == kind]
