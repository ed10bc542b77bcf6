"""Read training rows from JSONL, JSON, CSV, Parquet, plain text and ``save_to_disk`` folders.

A folder holding LLaMA-Factory's ``dataset_info.json`` (not a saved dataset: that one has a
``state.json`` or ``dataset_dict.json``) reads the file its one local entry names; the entry's
column mapping is applied by ``prepare`` (``mapping.entry_for``). Plain ``.txt`` files are
documents for continued pre-training: one per blank-line-separated block, or one per line
when the file has no blank line (the ``datasets`` text loader's and LLaMA-Factory's
``wiki_demo.txt`` convention), or the whole file (``text_unit="document"``). Only regular
files are opened: a FIFO or device named ``.jsonl`` is refused instead of read forever.

Rows are yielded one at a time (JSONL, CSV and Parquet are streamed) so a large file never
has to fit in memory twice. Every bad row carries its file and line: with
``on_bad_rows="stop"`` the first one raises a one-line ``TuituneError``; with ``"skip"`` it
is counted and listed in the ``LoadReport`` (the first ``MAX_LISTED``) and loading goes on.
Input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data import mapping
from tuitune.core.data.formats import CHAT_KEYS
from tuitune.core.errors import TuituneError

ON_BAD_ROWS = ("stop", "skip")
MAX_LISTED = 50
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt")
TEXT_UNITS = ("auto", "paragraph", "line", "document")


@dataclass(frozen=True)
class BadRow:
    """One row that was refused: where it is and why."""

    path: str
    line: int
    reason: str

    def format(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class LoadReport:
    """What loading read: files, rows, and the bad rows skipped (first ``MAX_LISTED`` listed)."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    bad: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "rows": self.rows,
            "bad": self.bad,
            "bad_rows": [b.format() for b in self.bad_rows],
            "empty_files": self.empty_files,
        }


@dataclass(frozen=True)
class Row:
    """A row as read, with its origin (for messages that name file and line)."""

    path: str
    line: int
    data: Any


class _Sink:
    """Applies the bad-row policy: raise at once, or count and list."""

    def __init__(self, on_bad_rows: str, report: LoadReport) -> None:
        if on_bad_rows not in ON_BAD_ROWS:
            raise TuituneError(
                f"unknown bad-row policy {on_bad_rows!r}", fix="use 'stop' or 'skip'"
            )
        self.stop = on_bad_rows == "stop"
        self.report = report

    def bad(self, path: Path | str, line: int, reason: str, fix: str | None = None) -> None:
        if self.stop:
            raise TuituneError(
                reason,
                path=path,
                line=line,
                fix=fix or "correct the row, or choose to skip bad rows (they are counted)",
            )
        self.report.bad += 1
        if len(self.report.bad_rows) < MAX_LISTED:
            self.report.bad_rows.append(BadRow(str(path), line, reason))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to read: plain files as given; a ``save_to_disk`` directory as itself; a folder
    with LLaMA-Factory's dataset_info.json as the file of its one local entry; any other
    directory expands to the data files directly inside it, sorted."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise TuituneError("file not found", path=p, fix="check the path")
        if p.name == mapping.INFO_FILE and mapping.is_llamafactory_info(p):
            p = p.parent
        if p.is_dir() and mapping.is_llamafactory_info(p / mapping.INFO_FILE):
            out.append(_llamafactory_file(p))
            continue
        if not p.is_dir() and not stat.S_ISREG(p.stat().st_mode):
            raise TuituneError(
                "not a regular file (a FIFO, device or socket): it cannot be read as data",
                path=p,
                fix="save the data to a file first",
            )
        if p.is_dir() and not is_saved_dataset(p):
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise TuituneError(
                    "directory holds no data files and is not a saved dataset",
                    path=p,
                    fix=f"use files ending in {', '.join(SUFFIXES)} or a save_to_disk folder",
                )
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise TuituneError("no data files given", fix="pass at least one file")
    return out


def _llamafactory_file(folder: Path) -> Path:
    entries = mapping.local_entries(folder)
    if len(entries) == 1:
        return next(iter(entries.values()))
    names = ", ".join(sorted(entries)[:8]) + (", ..." if len(entries) > 8 else "")
    raise TuituneError(
        f"dataset_info.json lists {len(entries)} local datasets"
        + (f" ({names})" if entries else " (its entries name no file in this folder)"),
        path=folder / mapping.INFO_FILE,
        fix="pass the data file itself (FOLDER/FILE): its entry in dataset_info.json is read",
    )


def is_saved_dataset(path: Path) -> bool:
    """True for a directory written by ``datasets``' ``save_to_disk`` (Dataset or DatasetDict);
    a LLaMA-Factory dataset_info.json alone does not make one."""
    if not path.is_dir():
        return False
    if any((path / n).is_file() for n in ("state.json", "dataset_dict.json")):
        return True

    info = path / mapping.INFO_FILE
    return info.is_file() and not mapping.is_llamafactory_info(info)


def iter_rows(
    paths: Iterable[str | Path],
    *,
    on_bad_rows: str = "stop",
    report: LoadReport | None = None,
    text_unit: str = "auto",
) -> Iterator[Row]:
    """Yield every row of every file in order; bad rows follow ``on_bad_rows``."""
    report = report if report is not None else LoadReport()
    sink = _Sink(on_bad_rows, report)
    if text_unit not in TEXT_UNITS:
        raise TuituneError(f"unknown text unit {text_unit!r}", fix=f"use {', '.join(TEXT_UNITS)}")
    for path in expand_paths(paths):
        report.files.append(str(path))
        before = report.rows + report.bad
        for row in _iter_file(path, sink, text_unit):
            report.rows += 1
            yield row
        if report.rows + report.bad == before:
            report.empty_files.append(str(path))
            sink.bad(path, 0, "file has no rows", fix="remove the file or fill it")


def _iter_file(path: Path, sink: _Sink, text_unit: str = "auto") -> Iterator[Row]:
    if path.is_dir():
        yield from _iter_saved(path, sink)
        return
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(path, sink)
    elif suffix == ".json":
        yield from _iter_json(path, sink)
    elif suffix in (".csv", ".tsv"):
        yield from _iter_csv(path, sink, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        yield from _iter_parquet(path, sink)
    elif suffix == ".txt":
        yield from _iter_text(path, sink, text_unit)
    else:
        raise TuituneError(
            f"unsupported file type {suffix or '(none)'}",
            path=path,
            fix=f"use one of {', '.join(SUFFIXES)} or a save_to_disk folder",
        )


def _iter_jsonl(path: Path, sink: _Sink) -> Iterator[Row]:
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte-order mark
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                sink.bad(
                    path,
                    lineno,
                    f"not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})",
                    fix="re-save the file as UTF-8, or skip bad rows",
                )
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                sink.bad(path, lineno, f"invalid JSON: {e.msg} at column {e.colno}")
                continue
            except RecursionError:
                sink.bad(path, lineno, _TOO_DEEP)
                continue
            if not isinstance(data, dict):
                sink.bad(path, lineno, f"row is a JSON {type(data).__name__}, expected an object")
                continue
            yield Row(str(path), lineno, data)


def _decode_whole(path: Path, sink: _Sink) -> str | None:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        sink.bad(path, line, "not UTF-8", fix="re-save the file as UTF-8")
        return None


def _iter_json(path: Path, sink: _Sink) -> Iterator[Row]:
    text = _decode_whole(path, sink)
    if text is None:
        return
    if not text.strip():
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON Lines saved as .json
            yield from _iter_jsonl(path, sink)
            return
        sink.bad(path, e.lineno, f"invalid JSON: {e.msg} at column {e.colno}")
        return
    except RecursionError:
        sink.bad(path, 1, _TOO_DEEP)
        return
    if isinstance(data, dict):
        data = _unwrap(data)
    if not isinstance(data, list):
        sink.bad(path, 1, "top level is not a list of objects")
        return
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            sink.bad(path, i, f"item {i} is a JSON {type(item).__name__}, expected an object")
            continue
        yield Row(str(path), i, item)


_TOO_DEEP = "JSON nested too deeply to read (over Python's recursion limit of about 1,000)"


def _unwrap(data: dict[str, Any]) -> list[Any]:
    """A top-level object: a ``{"data": [...rows]}`` wrapper is unwrapped; one row (say
    ``{"conversations": [...turns]}``) stays one row."""
    lists = [k for k, v in data.items() if isinstance(v, list)]
    if len(lists) != 1 or lists[0] in (*CHAT_KEYS, "chosen", "rejected", "prompt", "completion"):
        return [data]
    items = data[lists[0]]
    if not all(isinstance(x, dict) for x in items[:10]):
        return [data]
    turn_keys = ("role", "from", "content", "value")
    if items and all(any(k in x for k in turn_keys) for x in items[:10]):
        return [data]  # a list of turns: the object is one conversation
    return items


def _iter_text(path: Path, sink: _Sink, unit: str) -> Iterator[Row]:
    text = _decode_whole(path, sink)
    if text is None or not text.strip():
        return
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if unit == "auto":
        inner = [ln for ln in lines if ln.strip()]
        has_blank = any(not ln.strip() for ln in lines[: len(lines) - 1]) and len(inner) > 1
        unit = "paragraph" if has_blank else "line"
    if unit == "document":
        yield Row(str(path), 1, {"text": text.strip()})
        return
    if unit == "line":
        for lineno, line in enumerate(lines, start=1):
            if line.strip():
                yield Row(str(path), lineno, {"text": line.strip()})
        return
    block: list[str] = []
    start = 1
    for lineno, line in enumerate([*lines, ""], start=1):
        if line.strip():
            if not block:
                start = lineno
            block.append(line)
        elif block:
            yield Row(str(path), start, {"text": "\n".join(block).strip()})
            block = []


def _cell(value: str) -> Any:
    """CSV cells holding JSON (a messages list, say) are parsed; others stay text."""
    v = value.strip()
    if v[:1] in ("[", "{"):
        try:
            return json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            return value
    if v in ("true", "True", "false", "False"):
        return v.lower() == "true"
    return value


def _iter_csv(path: Path, sink: _Sink, delimiter: str) -> Iterator[Row]:
    with path.open("rb") as fb:
        head = fb.read(3)
        fb.seek(3 if head == b"\xef\xbb\xbf" else 0)
        stream = io.TextIOWrapper(fb, encoding="utf-8", newline="")
        try:
            reader = csv.reader(stream, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            for record in reader:
                line = reader.line_num
                if not any(c.strip() for c in record):
                    continue
                if len(record) != len(header):
                    sink.bad(path, line, f"{len(record)} cells, header has {len(header)}")
                    continue
                yield Row(str(path), line, {h: _cell(c) for h, c in zip(header, record)})
        except UnicodeDecodeError:
            sink.bad(path, reader.line_num + 1, "not UTF-8", fix="re-save the file as UTF-8")
        except csv.Error as e:
            sink.bad(path, reader.line_num, f"invalid CSV: {e}")


def _iter_parquet(path: Path, sink: _Sink) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError variants
        raise TuituneError(f"not a readable Parquet file ({e})", path=path) from None
    line = 0
    for batch in pf.iter_batches(batch_size=2048):
        for item in batch.to_pylist():
            line += 1
            yield Row(str(path), line, item)


def _iter_saved(path: Path, sink: _Sink) -> Iterator[Row]:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as e:  # datasets raises FileNotFoundError / ValueError variants
        raise TuituneError(f"not a readable saved dataset ({e})", path=path) from None
    if isinstance(ds, DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    assert isinstance(ds, Dataset)
    for i, item in enumerate(ds, start=1):
        yield Row(str(path), i, item)
