"""The CLI: bad input is one line naming the file and the fix, exit non-zero, nothing touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tuitune(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuitune", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=300,
    )


def _digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _session(tmp_path: Path, model: str, train: str, **extra: object) -> Path:
    data = {
        "schema_version": 1,
        "model": {"ref": model},
        "data": {"train": [train]},
        "spec": {"max_steps": 2},
        **extra,
    }
    p = tmp_path / "session.json"
    p.write_text(json.dumps(data, indent=2))
    return p


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in err[0], err[0]


def test_help_lists_commands() -> None:
    proc = tuitune("--help")
    assert proc.returncode == 0
    for cmd in ("replay", "sessions", "locate"):
        assert cmd in proc.stdout


def test_locate_prints_every_directory(tuitune_home: Path) -> None:
    proc = tuitune("locate")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"config", "data", "sessions", "runs", "cache", "models"} <= set(names)
    assert str(tuitune_home) in proc.stdout


def test_sessions_lists_saved_sessions() -> None:
    from tuitune.core.session import Session

    Session(name="hello-session").save()
    proc = tuitune("sessions")
    assert proc.returncode == 0 and "hello-session" in proc.stdout


def test_session_with_json_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{\n "schema_version": 1\n "name": "x"\n}\n')
    before = _digest([p])
    proc = tuitune("replay", str(p))
    _assert_one_line_error(proc, str(p), ":3:", "fix:")
    assert _digest([p]) == before


def test_unknown_schema_version(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"schema_version": 7}))
    proc = tuitune("replay", str(p))
    _assert_one_line_error(proc, str(p), "schema_version", "upgrade tuitune")


def test_data_path_that_does_not_exist(tmp_path: Path, tiny_model: Path) -> None:
    p = _session(tmp_path, str(tiny_model), "missing/data.jsonl")
    proc = tuitune("replay", str(p))
    _assert_one_line_error(proc, str(tmp_path / "missing" / "data.jsonl"), "does not exist")


def test_model_path_that_is_not_a_model(tmp_path: Path) -> None:
    notmodel = tmp_path / "notmodel"
    notmodel.mkdir()
    (notmodel / "readme.txt").write_text("hi")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    p = _session(tmp_path, str(notmodel), "d.jsonl")
    proc = tuitune("replay", str(p))
    _assert_one_line_error(proc, str(notmodel), "not a model")


def test_jsonl_with_one_broken_line(tmp_path: Path, tiny_model: Path) -> None:
    data = tmp_path / "d.jsonl"
    rows = [json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}) for i in range(5)]
    rows[2] = '{"prompt": "broken", "completion": '
    data.write_text("\n".join(rows) + "\n")
    p = _session(tmp_path, str(tiny_model), "d.jsonl")
    before = _digest([p, data])
    proc = tuitune("replay", str(p), "--out", str(tmp_path / "runs"))
    _assert_one_line_error(proc, str(data), ":3")
    assert _digest([p, data]) == before


def test_bad_override_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    p = _session(tmp_path, str(tiny_model), "d.jsonl")
    proc = tuitune("replay", str(p), "--set", "no_such_field=1")
    _assert_one_line_error(proc, "no_such_field")


@pytest.mark.parametrize("debug", [True])
def test_debug_shows_the_traceback(tmp_path: Path, debug: bool) -> None:
    p = tmp_path / "s.json"
    p.write_text("{")
    proc = tuitune("--debug", "replay", str(p))
    assert proc.returncode != 0 and "Traceback" in proc.stderr
