"""Trackers through TRL's report_to: off by default, TensorBoard writes local event files."""

from __future__ import annotations

import importlib.util

import pytest
from runner_kit import make_spec, train

from tuitune.core.errors import TuituneError
from tuitune.core.runs.tracking import check_report_to, tensorboard_dir, where_it_goes
from tuitune.core.spec import TrainSpec

pytestmark = pytest.mark.usefixtures("one_thread")


def test_trackers_are_off_by_default_and_checked():
    assert TrainSpec().report_to == []
    check_report_to([])
    with pytest.raises(TuituneError, match="unknown tracker"):
        check_report_to(["tensorbored"])
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(TuituneError, match="not installed"):
            check_report_to(["wandb"])
    assert "nothing is sent" in where_it_goes("trackio")


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="needs tensorboard")
def test_tensorboard_run_writes_event_files_and_default_run_none(tiny_model, data, tmp_path):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rc, run = train(
        make_spec(tiny_model, data, tmp_path / "tb", max_steps=2, report_to=["tensorboard"])
    )
    assert rc == 0
    files = list(tensorboard_dir(run).rglob("events.out.tfevents.*"))
    assert files, "no TensorBoard event files"
    acc = EventAccumulator(str(files[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]
    assert run.events.is_file()  # events.jsonl is written as always
    rc, plain = train(make_spec(tiny_model, data, tmp_path / "plain", max_steps=1))
    assert rc == 0
    assert not list(plain.root.rglob("events.out.tfevents.*"))


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="needs tensorboard")
def test_preparing_a_run_says_where_tracked_metrics_go(tiny_model, tmp_path):
    import json

    from tuitune.core.models.resolve import resolve_model
    from tuitune.core.runs.rundir import new_run_dir
    from tuitune.core.session import load_session
    from tuitune.core.training.launch import prepare_run

    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(8)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"max_steps": 1, "report_to": ["tensorboard"]}
    session = {
        "schema_version": 1,
        "model": {"ref": str(tiny_model)},
        "data": {"train": ["d.jsonl"]},
    }
    (tmp_path / "s.json").write_text(json.dumps({**session, "spec": spec}))
    s = load_session(tmp_path / "s.json")
    run = new_run_dir(tmp_path / "runs")
    lines: list[str] = []
    prepare_run(s, s.train_spec(), resolve_model(str(tiny_model)), run, progress=lines.append)
    assert f"tracking: tensorboard: local files in {tensorboard_dir(run)}" in lines[0]
