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


def test_the_temp_file_is_a_hidden_sibling_named_after_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ls``, ``*.json`` globs and the run listing never see a half-written file."""
    calls = _fail_replace(monkeypatch)
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "report.md", "x")
    tmp = Path(calls[0][0]).name
    assert tmp.startswith(".report.md.") and tmp.endswith(".tmp") and tmp != ".report.md..tmp"


def test_the_original_error_surfaces_even_when_the_temp_file_is_already_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace(src, dst, *a, **k):
        os.unlink(src)  # e.g. a cleaner removed it, or the rename half-happened
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(tmp_path / "a.json", "{}")
    assert list(tmp_path.iterdir()) == [tmp_path / "tuitune-home"]


def _umask_now() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_mode_a_plain_open_would_give(tmp_path: Path, mask: int) -> None:
    from tuitune.core.atomic import default_file_mode

    old = os.umask(mask)
    try:
        assert default_file_mode() == 0o666 & ~mask
        write_json_atomic(tmp_path / "run.json", {"a": 1})
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(old)
    mode = (tmp_path / "run.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_an_explicit_mode_wins(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "key", b"secret", mode=0o600)
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    write_bytes_atomic(tmp_path / "tool", b"#!/bin/sh\n", mode=0o755)
    assert (tmp_path / "tool").stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_the_umask_is_read_without_changing_it_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting and restoring the umask races other threads' file creation: /proc is read."""
    from tuitune.core.atomic import default_file_mode

    expected = 0o666 & ~_umask_now()

    def no_umask(_mask: int) -> int:
        raise AssertionError("os.umask called while /proc/self/status is readable")

    monkeypatch.setattr(os, "umask", no_umask)
    assert default_file_mode() == expected


@pytest.mark.parametrize(
    "status", [OSError(13, "Permission denied"), "Name:\tpython\nUmask:\tzz\n", "Name:\tpy\n"]
)
def test_the_umask_falls_back_when_proc_is_unreadable_or_odd(
    monkeypatch: pytest.MonkeyPatch, status
) -> None:
    from tuitune.core.atomic import default_file_mode

    expected = 0o666 & ~_umask_now()
    real = Path.read_text

    def read_text(self, *a, **k):
        if str(self) == "/proc/self/status":
            if isinstance(status, Exception):
                raise status
            return status
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert default_file_mode() == expected


def test_json_keeps_the_key_order_it_was_given(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "spec.json", {"schema_version": 1, "b": 2, "a": [1, "é"]})
    text = (tmp_path / "spec.json").read_text(encoding="utf-8")
    assert text == '{\n  "schema_version": 1,\n  "b": 2,\n  "a": [\n    1,\n    "\\u00e9"\n  ]\n}\n'


def test_refuse_existing_unless_forced(tmp_path: Path) -> None:
    from tuitune.core.atomic import refuse_existing
    from tuitune.core.errors import TuituneError

    out = tmp_path / "merged"
    refuse_existing(out, force=False)  # nothing there: fine
    out.mkdir()
    with pytest.raises(TuituneError, match="already exists") as e:
        refuse_existing(out, force=False)
    assert str(out) in str(e.value) and "already exists: not replacing it" in str(e.value)
    assert "pass --force to replace it, or choose another --out" in str(e.value)
    refuse_existing(out, force=True)
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")  # a dangling link is something there too
    with pytest.raises(TuituneError):
        refuse_existing(link, force=False)


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_swap_in_replaces_the_output_whole_and_leaves_nothing_behind(
    tmp_path: Path, kind: str
) -> None:
    from tuitune.core.atomic import swap_in

    d = tmp_path / "out"
    d.mkdir()
    final, new = d / "adapter", d / ".adapter.tmp"

    def make(p: Path, text: str) -> None:
        if kind == "dir":
            p.mkdir()
            (p / "w").write_text(text)
        else:
            p.write_text(text)

    def read(p: Path) -> str:
        return (p / "w").read_text() if kind == "dir" else p.read_text()

    make(new, "first")
    assert swap_in(new, final) == final  # nothing there yet
    assert read(final) == "first" and sorted(p.name for p in d.iterdir()) == ["adapter"]
    make(new, "second")
    # a leftover from an earlier crash (same pid) is cleared first, of either kind
    make(d / f".adapter.old-{os.getpid()}", "stale")
    swap_in(new, final)
    assert read(final) == "second"
    assert sorted(p.name for p in d.iterdir()) == ["adapter"]


def test_swap_in_over_a_symlink_and_a_stale_link(tmp_path: Path) -> None:
    from tuitune.core.atomic import swap_in

    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    final = tmp_path / "model"
    final.symlink_to(target)
    (tmp_path / f".model.old-{os.getpid()}").symlink_to(tmp_path / "gone")
    new = tmp_path / ".model.tmp"
    new.write_text("new")
    swap_in(new, final)
    assert not final.is_symlink() and final.read_text() == "new"
    assert target.read_text() == "keep me"  # the link went away, not what it pointed to
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "model", "tuitune-home"]
