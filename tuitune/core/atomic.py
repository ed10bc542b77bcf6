"""Atomic file writes: write a sibling temp file, fsync, then rename over the target.

A crash at any point leaves either the old file or the new one, never a torn file. The
result gets the mode a plain ``open()`` would give (0666 less the umask, so 0644 usually):
``mkstemp``'s private 0600 is right for the temp file, wrong for a report or a run.json that
a colleague or a web server should read.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError


def _umask() -> int:
    """The process umask: from /proc on Linux (thread-safe), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would create: 0666 less the umask."""
    return 0o666 & ~_umask()


def write_bytes_atomic(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent directories.

    ``mode`` defaults to what a plain ``open()`` gives (see ``default_file_mode``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), default_file_mode() if mode is None else mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def refuse_existing(path: str | Path, *, force: bool) -> None:
    """Exports never replace what is already there unless asked (``--force``): an existing
    ``--out DIR/merged`` may be someone's model."""
    path = Path(path)
    if not force and (path.exists() or path.is_symlink()):
        raise TuituneError(
            "already exists: not replacing it",
            path=path,
            fix="pass --force to replace it, or choose another --out",
        )


def swap_in(tmp: str | Path, final: str | Path) -> Path:
    """Put a finished ``tmp`` (file or folder) at ``final``: rename the old one away, rename
    the new one in, then delete the old one. At every moment ``final`` is the whole old or
    the whole new output (a crash between the renames leaves the old one beside it as
    ``.NAME.old-PID``)."""
    import shutil

    tmp, final = Path(tmp), Path(final)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists() or final.is_symlink():
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
        os.replace(final, old)
    os.replace(tmp, final)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists() or old.is_symlink():
        old.unlink()
    return final
