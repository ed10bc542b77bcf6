"""Resume picks the newest complete checkpoint when there are two (issue 19: the SIGTERM test
saved one checkpoint, so resuming from the first went unnoticed there)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from runner_kit import make_spec, train

from tuitune.core.runs.events import RunCurves, read_events


def _steps(run_checkpoints: Path) -> list[int]:
    return sorted(
        int(p.name.split("-")[1])
        for p in run_checkpoints.iterdir()
        if p.name.startswith("checkpoint-") and (p / "trainer_state.json").is_file()
    )


def test_sigterm_with_two_checkpoints_resumes_from_the_last(
    tiny_model,
    data,  # noqa: F811
    tmp_path,
    one_thread,
):
    spec = make_spec(tiny_model, data, tmp_path / "run", max_steps=12, save_steps=2, eval_file="")
    events = Path(spec.output_dir) / "events.jsonl"

    def send_sigterm_after_step_three() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e["type"] == "step" and e["step"] >= 3 for e in read_events(events)):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    sender = threading.Thread(target=send_sigterm_after_step_three, daemon=True)
    sender.start()
    try:
        rc, run = train(spec, signals=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    sender.join(5)
    assert rc == 0
    stopped = read_events(run.events)[-1]
    assert stopped["type"] == "stopped", stopped
    step = stopped["step"]
    assert 3 <= step < 12
    kept = _steps(run.checkpoints)
    assert len(kept) == 2 and kept[-1] == step and kept[0] < step, kept

    rc, run = train(spec, resume=True)
    assert rc == 0
    starts = [e for e in read_events(run.events) if e["type"] == "start"]
    assert starts[-1]["start_step"] == step, (starts[-1], kept)
    assert starts[-1]["resumed_from"].endswith(f"checkpoint-{step}")
    curves = RunCurves().extend(read_events(run.events))
    assert curves.train_steps == list(range(1, 13))  # no step trained twice, none skipped
    assert curves.final["type"] == "finished"
