"""The training child as a process: the children this process started, whether a pid is
still the same live process (start time guards against pid reuse), and reaping."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

# Popen objects of children started by this process: polling them reaps the zombie, which
# ``os.kill(pid, 0)`` alone would report as alive.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (field 22 of /proc/PID/stat): guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int | None, start_time: str | None = None) -> bool:
    if not pid:
        return False
    child = CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError):
            if stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
        if start_time is not None and proc_start_time(pid) not in (None, start_time):
            return False
    return True


def reap(pid: int | None) -> int | None:
    child = CHILDREN.pop(pid, None) if pid else None
    if child is None:
        return None
    with contextlib.suppress(subprocess.TimeoutExpired):
        return child.wait(timeout=30)
    return None
