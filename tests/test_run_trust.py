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
