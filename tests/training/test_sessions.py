"""Sessions: versioned, atomic, and refused with one line when broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.session import SESSION_SCHEMA_VERSION, Session, list_sessions, load_session
from tuitune.core.spec import TrainSpec


def _write(tmp_path: Path, data: object, name: str = "s.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_round_trip_keeps_every_answer(tmp_path: Path) -> None:
    s = Session(name="demo")
    s.answers["decide"] = {"prompting_tried": True, "flags": ["strict_format"]}
    s.data.train = ["data.jsonl"]
    s.spec = TrainSpec(lora_r=8).to_dict()
    s.runs.append("run-1")
    path = s.save(tmp_path / "demo.json")
    back = load_session(path)
    assert back.to_dict() == s.to_dict()
    assert back.train_spec().lora_r == 8
    assert json.loads(path.read_text())["schema_version"] == SESSION_SCHEMA_VERSION


def test_default_location_is_the_sessions_dir() -> None:
    path = Session(name="x").save()
    assert path.parent.name == "sessions"
    assert [p for p, _ in list_sessions()] == [path]


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    s = Session()
    p = s.save(tmp_path / "d" / "a.json")
    before = p.read_text()
    s.name = "changed"
    s.save()
    assert p.read_text() != before
    assert [q.name for q in p.parent.iterdir()] == ["a.json"]


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, '{\n  "schema_version": 1,\n  "name": "x",,\n}')
    with pytest.raises(TuituneError) as e:
        load_session(p)
    assert str(p) in str(e.value) and ":3:" in str(e.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"schema_version": 99}, "upgrade tuitune"),
        ({"schema_version": 0}, "schema_version"),
        ({"name": "x"}, "schema_version"),
        ({"schema_version": 1, "bogus": 1}, "bogus"),
        ({"schema_version": 1, "model": {"ref": 3}}, "model.ref"),
        ({"schema_version": 1, "spec": {"lora_r": "big"}}, "lora_r"),
        ({"schema_version": 1, "spec": {"method": "magic"}}, "method"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_sessions_give_one_line_naming_the_field(
    tmp_path: Path, data: object, needle: str
) -> None:
    p = _write(tmp_path, data)
    with pytest.raises(TuituneError) as e:
        load_session(p)
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_broken_sessions_are_listed_not_fatal(tmp_path: Path) -> None:
    Session(name="good").save()
    from tuitune.core.paths import sessions_dir

    (sessions_dir() / "broken.json").write_text("{")
    kinds = sorted(type(s).__name__ for _, s in list_sessions())
    assert kinds == ["Session", "TuituneError"]


def test_relative_paths_resolve_against_the_session_file(tmp_path: Path) -> None:
    s = Session()
    s.save(tmp_path / "sub" / "s.json")
    assert s.resolve("data/x.jsonl") == tmp_path / "sub" / "data" / "x.jsonl"
    assert s.resolve("/abs/x.jsonl") == Path("/abs/x.jsonl")


def test_spec_round_trip_and_help() -> None:
    spec = TrainSpec(method="qlora", load_in_4bit=True, lora_target_modules=["q_proj"])
    assert TrainSpec.from_dict(json.loads(spec.to_json())) == spec
    assert "rank" in TrainSpec.help("lora_r").lower()
    assert spec.effective_batch_size == 16
