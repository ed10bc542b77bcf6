"""Listing runs reads each run's run.json and the tail of its events.jsonl only: a long run
costs a few blocks, not its whole history (the Start screen lists runs from a worker)."""

from __future__ import annotations

import builtins
import json
import time

from tuitune.core.runs.process import list_runs, run_info
from tuitune.core.runs.rundir import RunDir


def _long_run(root, steps: int) -> RunDir:
    run = RunDir(root)
    root.mkdir(parents=True)
    run.run_json.write_text(json.dumps({"pid": 0, "method": "lora", "events_offset": 0}))
    start = {"v": 1, "type": "start", "total_steps": steps, "spec": {"x": "y" * 2000}}
    with open(run.events, "w") as f:
        f.write(json.dumps(start) + "\n")
        for s in range(1, steps + 1):
            f.write(json.dumps({"v": 1, "type": "step", "step": s, "loss": 1.0 / s}) + "\n")
        f.write(json.dumps({"v": 1, "type": "finished", "step": steps}) + "\n")
        for i in range(300):  # the evaluation's progress events come after the end
            f.write(json.dumps({"v": 1, "type": "progress", "done": i, "total": 300}) + "\n")
    return run


def test_a_long_run_is_summarised_from_its_tail(tmp_path, monkeypatch):
    run = _long_run(tmp_path / "runs" / "long", 200_000)
    assert run.events.stat().st_size > 8_000_000
    read = []
    real_open = builtins.open

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            data = self.f.read(n)
            read.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def counting_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Counting(f) if str(path).endswith("events.jsonl") else f

    monkeypatch.setattr(builtins, "open", counting_open)
    t0 = time.perf_counter()
    info = run_info(run)
    elapsed = time.perf_counter() - t0
    assert info.state == "finished" and info.step == 200_000 and info.total_steps == 200_000
    assert info.last_loss == 1.0 / 200_000
    assert sum(read) < 600_000, sum(read)  # a few blocks of an 8 MB file
    assert elapsed < 1.0
    monkeypatch.undo()
    (listed,) = list_runs(tmp_path / "runs")
    assert listed.state == "finished" and listed.to_dict()["step"] == 200_000
