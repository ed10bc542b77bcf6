"""prepare_data writes the curated set and manifest, never touches the inputs; masking checks
and ``tuitune data check`` report what would go wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tuitune.core.data.prepare import prepare_data
from tuitune.core.errors import TuituneError


def _alpaca(n: int) -> list[dict]:
    return [
        {"instruction": f"Question number {i} about topic {i * 7}", "input": "", "output": f"A{i}"}
        for i in range(n)
    ]


def _write(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra, encoding="utf-8")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prepare_writes_split_and_manifest(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _alpaca(50))
    before = _digest(src)
    out = prepare_data([src], tmp_path / "run" / "data", val_ratio=0.2, seed=7)
    assert _digest(src) == before
    assert out.data_format == "messages" and out.guess.name == "alpaca"
    train, val = _read(out.train_file), _read(out.eval_file)
    assert len(train) == 40 and len(val) == 10 and out.train_rows == 40
    assert train[0]["messages"][0]["role"] == "user"
    m = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert m == out.manifest
    assert m["inputs"][0]["sha256"] == before and m["split"]["seed"] == 7
    assert [s["name"] for s in m["curation"]["steps"]][:3] == [
        "strip_html",
        "normalize_whitespace",
        "drop_broken",
    ]
    again = prepare_data([src], tmp_path / "again", val_ratio=0.2, seed=7)
    assert _read(again.eval_file) == val  # the split is seeded
    other = prepare_data([src], tmp_path / "other", val_ratio=0.2, seed=8)
    assert _read(other.eval_file) != val


def test_quickstart_curated_train_file_is_unchanged(tmp_path: Path) -> None:
    """The quickstart's figures rest on its curated data: the session's own settings
    (val_ratio 0.05, seed 42, default curation) must keep writing the same bytes."""
    assets = Path(__file__).parents[2] / "assets"
    session = json.loads((assets / "sessions" / "quickstart.json").read_text())
    data = session["data"]
    assert data["curation"] == {} and session["spec"]["seed"] == 42
    out = prepare_data(
        [assets / "quickstart" / "train.jsonl"],
        tmp_path / "d",
        val_ratio=data["val_ratio"],
        seed=session["spec"]["seed"],
    )
    assert _digest(out.train_file) == (
        "498b9926c937e1eba8a1f1a1f45803ff65c8af4718cc6b2d772ecb8ae122ee76"
    )


def test_prepare_with_eval_files_and_no_split(tmp_path: Path) -> None:
    rows = _alpaca(30)
    src = _write(tmp_path / "train.jsonl", rows[:20])
    ev = _write(tmp_path / "eval.jsonl", rows[15:30])
    out = prepare_data([src], tmp_path / "d", eval_paths=[ev])
    assert out.train_rows == 20 and out.eval_rows == 10  # 5 overlapping rows removed
    assert "also in training" in out.warnings[0]
    none = prepare_data([src], tmp_path / "n", val_ratio=0)
    assert none.eval_file is None and none.train_rows == 20


def test_bad_row_stops_and_writes_nothing(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", _alpaca(5), "{oops\n")
    before = _digest(src)
    with pytest.raises(TuituneError, match=r"in\.jsonl:6: invalid JSON"):
        prepare_data([src], tmp_path / "d")
    assert not (tmp_path / "d").exists()
    assert _digest(src) == before
    out = prepare_data([src], tmp_path / "d", on_bad_rows="skip")
    assert out.load.bad == 1 and out.manifest["loading"]["bad_rows"][0].endswith(
        "in.jsonl:6: invalid JSON: Expecting property name enclosed in double quotes at column 2"
    )


def test_row_that_cannot_convert_names_line(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "hi"}]}] * 3
    rows.append({"messages": [{"role": "narrator", "content": "x"}]})
    src = _write(tmp_path / "in.jsonl", rows)
    with pytest.raises(TuituneError, match=r"in\.jsonl:4: messages\[0\] has role 'narrator'"):
        prepare_data([src], tmp_path / "d")


def test_unknown_format_names_nearest(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", [{"question": "q", "answer": "a"}] * 3)
    with pytest.raises(TuituneError, match="nearest supported format is prompt_completion"):
        prepare_data([src], tmp_path / "d")


def test_mixed_formats(tmp_path: Path) -> None:
    rows = _alpaca(8) + [{"text": "plain"}] * 2
    src = _write(tmp_path / "in.jsonl", rows)
    with pytest.raises(TuituneError, match="mixed formats"):
        prepare_data([src], tmp_path / "d")
    out = prepare_data([src], tmp_path / "d", on_bad_rows="skip", val_ratio=0)
    assert out.mixed_dropped == 2 and out.train_rows == 8 and out.guess.mixed == ["text"]


def test_preference_prepare(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(10)]
    out = prepare_data([_write(tmp_path / "p.jsonl", rows)], tmp_path / "d", val_ratio=0)
    assert out.data_format == "preference" and _read(out.train_file)[0] == rows[0]


def _model_without_eos(src: Path, dst: Path) -> Path:
    from transformers import AutoTokenizer

    shutil.copytree(src, dst)
    tok = AutoTokenizer.from_pretrained(dst)
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    tok.save_pretrained(dst)
    return dst


def test_masking_flags_missing_eos(tiny_model_plain: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from tuitune.core.data.masking import check_masking

    model = _model_without_eos(tiny_model_plain, tmp_path / "m")
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    ]
    report = check_masking(rows, AutoTokenizer.from_pretrained(model), data_format="messages")
    assert not report.ok and "EOS" in report.warnings[0].message
    good = check_masking(
        rows, AutoTokenizer.from_pretrained(tiny_model_plain), data_format="messages"
    )
    assert good.ok and good.warnings == []


def test_masking_flags_all_masked_and_truncation(tiny_model_plain: Path) -> None:
    from transformers import AutoTokenizer

    from tuitune.core.data.masking import check_masking

    rows = [
        {
            "messages": [
                {"role": "user", "content": "long " * 100},
                {"role": "assistant", "content": "x"},
            ]
        }
    ]
    report = check_masking(
        rows, AutoTokenizer.from_pretrained(tiny_model_plain), data_format="messages", max_length=32
    )
    levels = {w.level for w in report.warnings}
    assert "red" in levels and any("every label masked" in w.message for w in report.warnings)
    assert report.previews[0].truncated and report.previews[0].trained_count == 0


def test_data_check_cli(tiny_model_plain: Path, tmp_path: Path, capsys) -> None:
    from tuitune.cli import main

    src = _write(tmp_path / "in.jsonl", _alpaca(40))
    assert main(["data", "check", str(src), "--model", str(tiny_model_plain), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"] and report["format"]["source"] == "alpaca"
    assert report["stats"]["examples"] == 36 and report["masking"]["mode"] == "assistant_turns"
    assert report["stats"]["flags"][0]["level"] == "red"  # fewer than 100 examples
    bad_model = _model_without_eos(tiny_model_plain, tmp_path / "m")
    assert main(["data", "check", str(src), "--model", str(bad_model)]) == 1
    out = capsys.readouterr().out
    assert "NOT usable" in out and "EOS" in out
    assert main(["data", "check", str(tmp_path / "missing.jsonl")]) == 2
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl", "m", "tuitune-home"}
