"""Atomic writes: a failed rename leaves the old file whole and no partial file; the data is
fsynced before the rename (issue 19: a plain write passed the old test)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tuitune.core.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic


def _fail_replace(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def replace(src, dst, *a, **k):
        calls.append((str(src), str(dst)))
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", replace)
    return calls


@pytest.mark.parametrize(
    "write", [write_text_atomic, write_json_atomic, write_bytes_atomic], ids=lambda f: f.__name__
)
def test_a_failed_rename_keeps_the_old_file_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write
) -> None:
    d = tmp_path / "run"
    d.mkdir()
    target = d / "results.json"
    target.write_text('{"old": true}\n', encoding="utf-8")
    calls = _fail_replace(monkeypatch)
    new = {"new": [1, 2, 3]} if write is write_json_atomic else "new contents\n"
    if write is write_bytes_atomic:
        new = b"new contents\n"
    with pytest.raises(OSError, match="injected"):
        write(target, new)
    assert target.read_text(encoding="utf-8") == '{"old": true}\n'
    assert [p.name for p in d.iterdir()] == ["results.json"]  # no temp file left
    # the new bytes went to a sibling temp file, never to the target itself
    assert calls and calls[0][1] == str(target) and Path(calls[0][0]).parent == d
    assert calls[0][0] != str(target)


def test_the_new_data_is_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        order.append("fsync")
        real_fsync(fd)

    def replace(src, dst, *a, **k):
        # at rename time the temp file already holds every byte
        order.append("replace:" + Path(src).read_text(encoding="utf-8"))
        real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "sub" / "dir" / "spec.json"  # parents are created
    write_json_atomic(target, {"a": 1})
    text = '{\n  "a": 1\n}\n'
    assert order[: order.index("replace:" + text)].count("fsync") >= 1
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["spec.json"]


def test_text_is_utf8_and_an_existing_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "notes.md"
    target.write_text("old", encoding="utf-8")
    assert write_text_atomic(target, "café ✓\n") == target
    assert target.read_bytes() == "café ✓\n".encode()
