"""Run directories: where a run's files go."""

from __future__ import annotations

from tuitune.core.runs.rundir import new_run_dir


def test_relative_out_becomes_absolute(tmp_path, monkeypatch):
    # The training child runs inside the run folder: a relative --out must not reach it as a
    # relative path (replay --out runs failed with "spec file not found").
    monkeypatch.chdir(tmp_path)
    run = new_run_dir("runs")
    assert run.root.is_absolute()
    assert run.root.parent == tmp_path / "runs"
    assert run.spec.is_absolute()
