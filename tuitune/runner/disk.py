"""A full disk in the training child: free bytes where a path lives, and which errors are
the disk's (errno, or a library's wrapped message) with the message and fix to show."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

GiB = 2**30
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# What a full disk looks like when a library wraps the OSError: torch.save's stream writer,
# safetensors' Rust IoError.
_FULL_TEXT = ("no space left on device", "storagefull", "disk quota exceeded")
_MAYBE_FULL_TEXT = ("file write failed", "unexpected pos")


def free_bytes(path: Path) -> int:
    """Free bytes where ``path`` lives (``TUITUNE_TEST_FREE_BYTES`` overrides it in tests)."""
    hook = os.environ.get("TUITUNE_TEST_FREE_BYTES")
    if hook:
        return int(hook)
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return -1


def disk_full_error(e: BaseException, where: Path) -> OSError | None:
    """The disk-full OSError behind ``e`` (its cause chain, or a library's wrapped message),
    or None when ``e`` is not about a full disk."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in FULL_ERRNOS:
            return cur
        text = str(cur).lower()
        if any(t in text for t in _FULL_TEXT):
            return OSError(errno.ENOSPC, "No space left on device", str(where))
        if any(t in text for t in _MAYBE_FULL_TEXT) and 0 <= free_bytes(where) < 256 * 2**20:
            return OSError(errno.ENOSPC, "No space left on device", str(where))
        cur = cur.__cause__ or cur.__context__
    return None


def disk_error_message(e: OSError) -> tuple[str, str]:
    """(message, fix) for an OSError that is the disk's or the directory's fault."""
    where = f" writing {e.filename}" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        free = free_bytes(Path(e.filename)) if e.filename else -1
        left = f" ({free / GiB:.2f} GiB free)" if free >= 0 else ""
        return (
            f"disk full{where}: No space left on device{left}",
            "free disk space (old checkpoints, exports), then tuitune resume RUN",
        )
    return (
        f"cannot write{where}: {e.strerror or e}",
        "make the run directory writable, then tuitune resume RUN",
    )
