"""Attaching from the Start screen brings the run's own session along (a DPO run's session,
not the quickstart's defaults), and a stopped run can be evaluated (its checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

from wizard_kit import recorded_events, settle, write_run

from tuitune.core.session import Session
from tuitune.tui.app import TuituneApp
from tuitune.tui.defaults import new_session


async def test_attach_from_start_restores_the_runs_session(tmp_path: Path) -> None:
    from textual.widgets import OptionList

    from tuitune.core import paths

    events = recorded_events(4, final=None)
    events.append({"v": 1, "type": "stopped", "time": 1.0, "step": 4, "by": "tuitune stop"})
    run = write_run(paths.runs_dir() / "run-dpo", events)
    run.run_json.write_text(json.dumps({"run_id": "run-dpo", "pid": 0, "method": "dpo"}))
    own = Session(name="my dpo session", spec={"method": "dpo", "beta": 0.2})
    own.data.train = [str(tmp_path / "prefs.jsonl")]
    (run.root / "session.json").write_text(json.dumps(own.to_dict()))
    app = TuituneApp(new_session())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause()
        ol = app.screen.query_one(OptionList)
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        ol.highlighted = next(i for i, x in enumerate(labels) if "Attach run-dpo" in x)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.screen.STEP == "train"
        assert app.session.name == "my dpo session" and app.session.spec["method"] == "dpo"
        assert app.session.id == own.id and str(run.root) in app.session.runs
        assert app.session.path == ""  # saving writes a session file, never into the run
        assert app.run_view is not None and app.run_view.evaluable
        assert not app.run_view.finished
