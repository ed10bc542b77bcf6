"""`tuitune data check`: every error one line with exit 2, JSON errors with --json, mappings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tuitune.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["data", "check", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("tuitune:")]
    assert len(lines) == 1 and "internal error" not in lines[0], err
    return lines[0]


def test_debug_is_accepted_after_the_subcommand(capsys) -> None:
    from tuitune.core.errors import TuituneError

    rc, out, _ = _run(capsys, str(FIXTURES / "single_conversation.json"), "--debug")
    assert rc == 0 and "Format: sharegpt -> messages" in out
    with pytest.raises(TuituneError, match="completion is NaN"):  # --debug: the traceback
        main(["data", "check", str(FIXTURES / "nan_completion.jsonl"), "--debug"])


def test_json_error_object(capsys, tmp_path: Path) -> None:
    rc, out, _ = _run(capsys, str(FIXTURES / "nan_completion.jsonl"), "--json")
    assert rc == 2
    err = json.loads(out)
    assert err["usable"] is False and err["line"] == 2
    assert err["error"] == "completion is NaN (an empty or missing cell)"
    assert err["path"].endswith("nan_completion.jsonl") and err["fix"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--val-ratio", "0.9"], "out of range 0-0.5 (fix: use 0-0.5"),
        (["--columns", "answer"], "column mapping 'answer' is not NAME=COLUMN"),
        (["--format", "kto"], "unknown data format 'kto'"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, args: list[str], message: str) -> None:
    rc, _, err = _run(capsys, str(FIXTURES / "question_answer.csv"), *args)
    assert rc == 2 and message in _one_line_error(err)


def test_val_ratio_help_matches_the_check(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    text = capsys.readouterr().out
    assert "validation share (0-0.5)" in " ".join(text.split())


def test_out_onto_an_existing_file(capsys, tmp_path: Path) -> None:
    target = tmp_path / "taken.txt"
    target.write_text("mine")
    rc, _, err = _run(capsys, str(FIXTURES / "duplicates.jsonl"), "--out", str(target))
    assert rc == 2 and "the output folder is an existing file" in _one_line_error(err)
    assert target.read_text() == "mine"


def test_fifo_and_deep_json_exit_2(capsys, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    rc, _, err = _run(capsys, str(fifo))
    assert rc == 2 and "not a regular file" in _one_line_error(err)
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    rc, _, err = _run(capsys, str(deep))
    assert rc == 2 and "nested too deeply" in _one_line_error(err)


def test_curation_removing_everything_prints_the_report(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "empty.jsonl"
    bad.write_text('{"instruction": "a", "output": ""}\n{"instruction": "b", "output": ""}\n')
    rc, _, err = _run(capsys, str(bad))
    assert rc == 2
    assert "Curation report:" in err and "Drop empty or role-broken rows: 2 dropped" in err
    assert "[empty assistant answer]" in err
    assert "no training rows left after curation" in _one_line_error(err)


def test_columns_mapping_and_warnings_printed(capsys) -> None:
    rc, out, _ = _run(
        capsys,
        str(FIXTURES / "question_answer.csv"),
        "--columns",
        "prompt=question,completion=answer",
    )
    assert "Format: prompt_completion" in out
    assert "Columns: --columns (prompt=question, completion=answer)" in out
    rc, out, _ = _run(capsys, str(FIXTURES / "duplicates.jsonl"), "--json")
    report = json.loads(out)
    assert any("49 of 50 rows were duplicates" in w for w in report["warnings"])


def test_bitsandbytes_kernels_line_is_silenced(capsys) -> None:
    from tuitune.commands.data import _quiet_libraries

    _quiet_libraries()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    # Earlier tests may have imported bitsandbytes or configured logging (a level, or a
    # disabled logger): test the filter itself, on a logger that emits warnings.
    level, disabled, off = logger.level, logger.disabled, logging.root.manager.disable
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    logging.disable(logging.NOTSET)
    logger.addHandler(handler)
    try:
        logger.warning(
            "Failed to load CPU gemm_4bit_forward from kernels-community: %s.",
            "No module named 'kernels'",
        )
        logger.warning("something else")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
        logging.disable(off)
    assert [r.getMessage() for r in records] == ["something else"]
