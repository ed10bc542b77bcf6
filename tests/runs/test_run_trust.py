"""trust_remote_code is said out loud before anything loads, and a session from elsewhere
(a colleague's file) does not get to run a model's code unless the user confirms."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.session import load_session, trust_remote_code_line


def _colleague(tmp_path: Path) -> Path:
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
    )
    path = tmp_path / "colleague.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "model": {"ref": str(tmp_path / "no-such-model"), "trust_remote_code": True},
                "data": {"train": ["train.jsonl"]},
            }
        )
    )
    return path


def test_replay_turns_off_a_colleagues_trust_remote_code_before_loading(tmp_path):
    from tuitune.replay import replay

    out = io.StringIO()
    with pytest.raises(TuituneError):
        replay(_colleague(tmp_path), stream=out, out=tmp_path / "runs")
    lines = out.getvalue().splitlines()
    assert "trust_remote_code was on" in lines[0] and "turned off" in lines[0]
    assert "--set trust_remote_code=true" in lines[0]


def test_confirmed_trust_is_kept_and_said(tmp_path):
    session = load_session(_colleague(tmp_path))
    line = trust_remote_code_line(session, confirmed=True)
    assert "trust_remote_code is ON" in line and session.model.trust_remote_code
    mine = load_session(_colleague(tmp_path))
    mine.path = ""  # the user's own (unsaved) session: kept, and still said
    assert "is ON" in trust_remote_code_line(mine) and mine.model.trust_remote_code


def test_the_wizards_copy_of_a_session_from_elsewhere_clears_it(tmp_path):
    from tuitune.tui.defaults import copy_session

    copy = copy_session(load_session(_colleague(tmp_path)))
    assert copy.model.trust_remote_code is False
    assert copy.answers["trust_remote_code_cleared"]["from"].endswith("colleague.json")


async def test_model_screen_shows_it_and_ticking_it_confirms(tmp_path):
    from textual.widgets import Checkbox, Static

    from tuitune.tui.app import TuituneApp
    from tuitune.tui.defaults import copy_session

    session = copy_session(load_session(_colleague(tmp_path)))
    session.model.ref = "default"
    session.path = str(tmp_path / "mine.json")
    app = TuituneApp(session, start_step="model")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        note = str(app.screen.query_one("#model-trust-note", Static).render())
        assert "Turned off" in note and "colleague.json" in note
        box = app.screen.query_one("#model-trust", Checkbox)
        assert box.value is False
        box.value = True
        await pilot.pause()
        assert app.session.model.trust_remote_code is True
        assert "ON" in str(app.screen.query_one("#model-trust-note", Static).render())
    assert load_session(tmp_path / "mine.json").model.trust_remote_code is True
