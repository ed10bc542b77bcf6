"""Snapshots of every wizard step at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic inputs only: an isolated TUITUNE_HOME, a fake NVML (one H100), the tiny
model, a slice of the quickstart data, a recorded events.jsonl and fixed evaluation rows.
Update with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pytest_textual_snapshot")

from wizard_kit import make_app, recorded_events, write_run  # noqa: E402

from tuitune.core.hardware.probe import FakeGpu, FakeNVML  # noqa: E402
from tuitune.tui import messages as m  # noqa: E402
from tuitune.tui.app import STEPS  # noqa: E402  (every wizard step gets a snapshot)

SIZES = [(80, 24), (120, 40)]


async def _settle(pilot) -> None:
    """Workers post their results as messages, and tables size their columns on the next
    layout: wait for both, with room for a slow shared CPU."""
    import contextlib

    from textual.worker import WorkerCancelled

    for _ in range(6):
        with contextlib.suppress(WorkerCancelled):  # an exclusive worker replaced by a newer one
            await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.3)
    await _quiet(pilot)


async def _quiet(pilot) -> None:
    """Toasts time out on the wall clock, so whether one is still up at the screenshot
    depends on the machine's speed: take them down (their text is tested in test_tui)."""
    pilot.app.clear_notifications()
    await pilot.pause(0.1)


def build(step: str, tmp_path: Path, model: Path):
    """The app as it looks on ``step``, plus what to do before the screenshot.

    Runs with the working directory at ``tmp_path`` and relative paths, so no temporary
    path is painted on screen.
    """
    (tmp_path / "tiny-model").symlink_to(model, target_is_directory=True)
    model = Path("./tiny-model")
    fake = {"nvml": FakeNVML([FakeGpu(name="NVIDIA H100 80GB HBM3", total_gib=80.0, used_gib=0.5)])}
    if step == "template":
        # started on Template, the App reads the data on the Data step, then moves on by itself
        app = make_app(tmp_path, model=model, step="template", probe_kwargs=fake)

        async def before(pilot) -> None:
            for _ in range(200):
                if getattr(pilot.app.screen, "STEP", "") == "template":
                    break
                await pilot.pause(0.1)
            await _settle(pilot)

        return app, before
    if step in ("train", "evaluate"):
        run = write_run(Path("run-fixture"), recorded_events(30))
        app = make_app(tmp_path, model=model, step="train", probe_kwargs=fake)
        app._attach_on_mount = run

        async def before(pilot) -> None:
            # the App tails the recorded run in a worker: wait until all of it is in
            for _ in range(100):
                view = pilot.app.run_view
                if view is not None and view.finished:
                    break
                await pilot.pause(0.1)
            await pilot.pause(0.6)
            if step == "evaluate":
                pilot.app.eval_status = "x"  # no real evaluation in a snapshot
                pilot.app.goto("evaluate")
                await pilot.pause(0.2)
                pilot.app.post_message(
                    m.EvaluationFinished(
                        SimpleNamespace(
                            generations=[
                                {
                                    "prompt": "Ann Lee, 30, nurse in Oslo.",
                                    "before": "Sure! Here is the JSON you asked for: name Ann",
                                    "after": '{"name": "Ann Lee", "age": 30, "city": "Oslo"}',
                                }
                            ]
                        ),
                        [
                            ("json_extract exact", "50", "0.04", "0.82", "+0.78 (p<0.001)"),
                            ("json_valid", "50", "0.30", "1.00", "+0.70 (p<0.001)"),
                            ("general eval_loss", "40", "2.31", "2.36", "+0.05 (forgetting)"),
                        ],
                        Path("run-fixture/report.md"),
                    )
                )
                await pilot.pause(0.2)
                pilot.app.eval_status = ""
            await pilot.pause(0.8)
            await _quiet(pilot)

        return app, before
    app = make_app(tmp_path, model=model, step=step, probe_kwargs=fake)
    return app, _settle


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", STEPS)
def test_screen_snapshot(
    step, size, snap_compare, tmp_path: Path, tiny_model_plain: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app, before = build(step, tmp_path, tiny_model_plain)
    app.session.data.train = ["small.jsonl"]
    assert snap_compare(app, terminal_size=size, run_before=before)
