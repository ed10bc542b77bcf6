"""The user's files as standard-form items: load rows, apply column mappings, detect the
format and convert every row (``read_and_convert``), plus the inputs' size and SHA-256 for
manifests. Shared by the data pipeline (``prepare``) and the general-data mixture."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuitune.core.data.formats import (
    SOURCE_FORMATS,
    TARGET_OF,
    FormatGuess,
    Notes,
    RowError,
    convert_row,
    detect_row,
)
from tuitune.core.data.formats import detect_format as _detect
from tuitune.core.data.loading import BadRow, LoadReport, Row, iter_rows
from tuitune.core.data.mapping import ColumnMap, entry_for, parse_columns
from tuitune.core.data.rows import Item
from tuitune.core.errors import TuituneError

DETECT_SAMPLE = 500


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _mapping_for(path: str, user: ColumnMap | None, cache: dict[str, ColumnMap | None]) -> Any:
    if user is not None:
        return user
    if path not in cache:
        cache[path] = entry_for(Path(path))
    return cache[path]


def read_and_convert(
    paths: Sequence[str | Path],
    *,
    fmt: str = "auto",
    on_bad_rows: str = "stop",
    load: LoadReport | None = None,
    columns: ColumnMap | str | dict[str, str] | None = None,
    text_unit: str = "auto",
    notes: Notes | None = None,
    mappings: list[str] | None = None,
) -> tuple[list[Item], FormatGuess, int]:
    """Load rows and convert them to standard form.

    Returns the items, the format guess (forced when ``fmt`` names a source format) and the
    number of rows dropped because they were in another format than the majority (mixed
    files; those are bad rows, so ``on_bad_rows="stop"`` refuses them). ``columns`` renames
    each row's columns first (``mapping.parse_columns``); without it, a LLaMA-Factory
    dataset_info.json beside a file supplies that file's mapping. ``notes`` (message ->
    rows) collects what rows carried beyond trained text; ``mappings`` the mappings used.
    """
    load = load if load is not None else LoadReport()
    user_map = columns if isinstance(columns, ColumnMap) or columns is None else None
    if user_map is None and columns is not None:
        user_map = parse_columns(columns)  # type: ignore[arg-type]
    stop = on_bad_rows == "stop"

    def bad(r: Row, e: RowError) -> None:
        if stop:
            raise TuituneError(
                str(e),
                path=r.path,
                line=r.line,
                fix="correct the row, or choose to skip bad rows (they are counted)",
            ) from None
        load.bad += 1
        if len(load.bad_rows) < 50:
            load.bad_rows.append(BadRow(r.path, r.line, str(e)))

    cache: dict[str, ColumnMap | None] = {}
    rows: list[Row] = []
    used: dict[str, None] = {}
    for r in iter_rows(paths, on_bad_rows=on_bad_rows, report=load, text_unit=text_unit):
        mapping = _mapping_for(r.path, user_map, cache)
        if mapping is not None:
            used[mapping.describe()] = None
            try:
                r = Row(r.path, r.line, mapping.apply(r.data))
            except RowError as e:
                bad(r, e)
                continue
        rows.append(r)
    if mappings is not None:
        mappings.extend(used)
    if not rows:
        raise TuituneError("no usable rows", path=paths[0] if paths else None)
    sample = [r.data for r in _spread(rows, DETECT_SAMPLE)]
    guess = _detect(sample)
    if fmt != "auto":
        if fmt not in SOURCE_FORMATS:
            raise TuituneError(
                f"unknown data format {fmt!r}",
                fix=f"use auto or one of {', '.join(SOURCE_FORMATS)}",
            )
        guess = FormatGuess(
            fmt, TARGET_OF[fmt], 1.0, "chosen by you", guess.columns, guess.counts, guess.mixed
        )
    elif not guess.known:
        first = rows[0]
        raise TuituneError(
            f"unknown data format: columns {', '.join(guess.columns) or '(none)'}; nearest "
            f"supported format is {guess.nearest}; first row: {json.dumps(guess.sample)[:200]}",
            path=first.path,
            line=first.line,
            fix="map the columns, e.g. --columns prompt=question,completion=answer "
            "(in a session: data.columns), or rename them",
        )
    items: list[Item] = []
    mixed = 0
    for r in rows:
        try:
            kind = detect_row(r.data)
            if kind is not None and TARGET_OF.get(kind) != guess.target and fmt == "auto":
                mixed += 1
                raise RowError(f"row is {kind}, the file is {guess.name} (mixed formats)")
            source = guess.name if kind is None or fmt != "auto" else kind
            converted = convert_row(r.data, source, notes)
        except RowError as e:
            bad(r, e)
            continue
        items.append(Item(f"{Path(r.path).name}:{r.line}", converted))
    return items, guess, mixed


def _spread(rows: Sequence[Row], n: int) -> list[Row]:
    """Up to ``n`` rows spread over the whole list (mixed formats often start mid-file)."""
    if len(rows) <= n:
        return list(rows)
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]
