"""Forgetting mitigation by data mixture: the option, the bundled set and prepare_data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuitune.core import paths
from tuitune.core.data.mixture import parse_mix_option, rows_to_add
from tuitune.core.data.prepare import prepare_data
from tuitune.core.errors import TuituneError

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "assets" / "quickstart" / "train.jsonl"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_bundled_mix_is_deterministic_and_disjoint_from_the_forgetting_check(tmp_path):
    out = tmp_path / "assets"
    (out / "general").mkdir(parents=True)
    (out / "general" / "general.jsonl").write_bytes(
        (paths.assets_dir() / "general" / "general.jsonl").read_bytes()
    )
    script = ROOT / "scripts" / "make_general_mix.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, timeout=60)
    fresh = (out / "general" / "mix.jsonl").read_bytes()
    assert fresh == (paths.assets_dir() / "general" / "mix.jsonl").read_bytes()
    check = {
        m["content"].lower()
        for r in _read(out / "general" / "general.jsonl")
        for m in r.get("messages", [])
    }
    rows = _read(out / "general" / "mix.jsonl")
    assert len(rows) >= 200
    assert not {r["messages"][0]["content"].lower() for r in rows} & check
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)


def test_option_parsing():
    assert parse_mix_option(None) is None
    assert parse_mix_option({"share": 0}) is None
    opt = parse_mix_option({"share": 0.25, "file": ""})
    assert opt is not None and opt.bundled and opt.share == 0.25 and opt.file.is_file()
    assert parse_mix_option(0.1).share == 0.1
    with pytest.raises(TuituneError, match="out of range"):
        parse_mix_option({"share": 1.5})
    with pytest.raises(TuituneError, match="does not exist"):
        parse_mix_option({"share": 0.2, "file": "/nonexistent/mix.jsonl"})
    with pytest.raises(TuituneError, match="unknown mix_general key"):
        parse_mix_option({"ratio": 0.2})
    assert rows_to_add(80, 0.2) == 20  # 20 / (80 + 20) = 20%


def test_prepare_mixes_the_training_split_only_and_records_it(tmp_path):
    plain = prepare_data([TRAIN], tmp_path / "plain", seed=3)
    mixed = prepare_data(
        [TRAIN], tmp_path / "mixed", seed=3, curation={"mix_general": {"share": 0.2, "file": ""}}
    )
    m = mixed.manifest["mixture"]
    assert plain.manifest["mixture"] is None
    assert m["task_rows"] == plain.train_rows
    assert m["general_rows_added"] == rows_to_add(plain.train_rows, 0.2)
    assert abs(m["achieved_share"] - 0.2) < 0.01 and m["sha256"] and m["bundled"]
    rows = _read(mixed.train_file)
    assert len(rows) == plain.train_rows + m["general_rows_added"] == mixed.train_rows
    general = [r for r in rows if r["messages"][0]["role"] == "user"]  # task rows have a system
    assert len(general) == m["general_rows_added"]
    # validation stays task data, identical to the unmixed preparation
    assert mixed.eval_file.read_bytes() == plain.eval_file.read_bytes()
    # the general rows are spread through the set, not appended at the end
    first_half = rows[: len(rows) // 2]
    assert sum(r["messages"][0]["role"] == "user" for r in first_half) / len(first_half) > 0.1
    # the inputs are never modified and the same seed gives the same file
    again = prepare_data(
        [TRAIN], tmp_path / "again", seed=3, curation={"mix_general": {"share": 0.2}}
    )
    assert again.train_file.read_bytes() == mixed.train_file.read_bytes()


def test_users_own_general_file_and_format_errors(tmp_path):
    own = tmp_path / "own.jsonl"
    own.write_text(
        "".join(json.dumps({"instruction": f"Say {i}", "output": f"{i}"}) + "\n" for i in range(5)),
        encoding="utf-8",
    )
    prepared = prepare_data(
        [TRAIN],
        tmp_path / "out",
        val_ratio=0.0,
        curation={"mix_general": {"share": 0.5, "file": str(own)}},
    )
    m = prepared.manifest["mixture"]
    assert m["general_rows_available"] == 5 and m["repeated"] and not m["bundled"]
    assert m["general_rows_added"] == 480
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"text": "just text"}) + "\n", encoding="utf-8")
    with pytest.raises(TuituneError, match="needs chat training data"):
        prepare_data([text], tmp_path / "t", curation={"mix_general": {"share": 0.2}})


def test_relative_mix_file_resolves_against_the_session_folder(tmp_path):
    from tuitune.core.data.mixture import with_resolved_mix_file

    cur = {"pii": "off", "mix_general": {"share": 0.2, "file": "../general/mine.jsonl"}}
    out = with_resolved_mix_file(cur, tmp_path / "sessions")
    assert out["mix_general"]["file"] == str(tmp_path / "sessions" / "../general/mine.jsonl")
    assert cur["mix_general"]["file"] == "../general/mine.jsonl"  # the session is not changed
    assert with_resolved_mix_file({"mix_general": {"share": 0.2}}, tmp_path)["mix_general"] == {
        "share": 0.2
    }
    assert with_resolved_mix_file(None, tmp_path) is None
