"""Loading every file kind, and bad input reported with file and line (stop or skip)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.data.loading import LoadReport, iter_rows
from tuitune.core.errors import TuituneError


def load_rows(paths, *, on_bad_rows: str = "stop"):
    """All rows and the report, as prepare reads them (iter_rows streams them)."""
    report = LoadReport()
    return list(iter_rows(paths, on_bad_rows=on_bad_rows, report=report)), report


ROWS = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(3)]


def _jsonl(path: Path, rows: list, extra: bytes = b"") -> Path:
    path.write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode() + extra)
    return path


def test_jsonl_json_csv_parquet_and_saved_dir(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    a = _jsonl(tmp_path / "a.jsonl", ROWS)
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"data": ROWS}))
    c = tmp_path / "c.csv"
    c.write_text('prompt,completion\np0,c0\n"p,1","line\nbreak"\n')
    d = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), d)
    e = tmp_path / "saved"
    Dataset.from_list(ROWS).save_to_disk(str(e))
    rows, report = load_rows([a, b, c, d, e])
    assert report.rows == len(rows) == 3 + 3 + 2 + 3 + 3
    assert rows[7].data == {"prompt": "p,1", "completion": "line\nbreak"}
    assert rows[7].line == 4  # CSV line numbers count physical lines
    assert [r.data for r in rows[-3:]] == ROWS
    assert report.bad == 0 and len(report.files) == 5


def test_csv_cells_holding_json_are_parsed(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    p = tmp_path / "m.csv"
    p.write_text('messages\n"' + json.dumps(msgs).replace('"', '""') + '"\n')
    rows, _ = load_rows([p])
    assert rows[0].data["messages"] == msgs


def test_directory_of_files_is_expanded(tmp_path: Path) -> None:
    _jsonl(tmp_path / "1.jsonl", ROWS)
    _jsonl(tmp_path / "2.jsonl", ROWS)
    rows, report = load_rows([tmp_path])
    assert len(rows) == 6 and len(report.files) == 2


@pytest.mark.parametrize(
    ("content", "line", "msg"),
    [
        (b'{"text": "ok"}\n{"text": "broken"\n', 2, "invalid JSON"),
        (b'{"text": "ok"}\n\n{"text": "caf\xe9"}\n', 3, "not UTF-8"),
        (b'{"text": "ok"}\n[1, 2]\n', 2, "expected an object"),
    ],
)
def test_bad_line_stops_with_file_and_line(tmp_path: Path, content: bytes, line: int, msg: str):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(TuituneError, match=msg) as info:
        load_rows([p])
    assert info.value.path == str(p) and info.value.line == line
    assert f"bad.jsonl:{line}:" in str(info.value)
    assert p.read_bytes() == content  # never modified


def test_skip_mode_counts_and_lists(tmp_path: Path) -> None:
    p = _jsonl(tmp_path / "x.jsonl", ROWS, b"not json\n\xff\xfe\n")
    rows, report = load_rows([p], on_bad_rows="skip")
    assert len(rows) == 3 and report.bad == 2
    assert [b.line for b in report.bad_rows] == [4, 5]


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(TuituneError, match="file has no rows"):
        load_rows([p])


def test_json_not_utf8_names_line(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_bytes(b'[\n{"text": "a"},\n{"text": "\xe9"}\n]')
    with pytest.raises(TuituneError, match="not UTF-8") as info:
        load_rows([p])
    assert info.value.line == 3


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(TuituneError, match="file not found"):
        load_rows([tmp_path / "nope.jsonl"])
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(TuituneError, match="unsupported file type"):
        load_rows([odd])


def test_large_jsonl_is_streamed(tmp_path: Path) -> None:
    from tuitune.core.data.loading import iter_rows

    p = _jsonl(tmp_path / "big.jsonl", [{"text": "x" * 50}] * 20000)
    it = iter_rows([p])
    first = next(it)
    assert first.line == 1  # a generator: rows arrive before the file is read to the end
    assert sum(1 for _ in it) == 19999
