"""Can torch use the GPU that NVML sees? Checked without importing torch on the start path.

NVML (the probe) sees the driver's GPUs; training sees what torch sees. They differ when
torch is a CPU-only build (``2.13.0+cpu``: ``torch.version.cuda`` is None), when torch was
built for a newer CUDA major version than the driver supports, or when
``CUDA_VISIBLE_DEVICES`` hides every GPU. Each case would otherwise train on the CPU without
a word. The fast check reads ``torch/version.py`` as text (no import: milliseconds), so the
plan, the wizard and ``tuitune --help`` stay light; ``doctor`` adds a runtime check in a
subprocess (``torch.cuda.is_available()``), which catches driver failures the files cannot
show. CUDA minor versions are compatible (a cu12.8 build runs on a 12.4 driver), so only a
newer major version counts as a mismatch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "install a CUDA build of torch that matches the driver, e.g. "
    "pip install torch --index-url https://download.pytorch.org/whl/cu126"
)


@dataclass(frozen=True)
class TorchBuild:
    """What the installed torch was built for, read from its files."""

    version: str | None  # None: torch is not installed
    cuda: str | None  # CUDA version torch was built with ("12.6"); None: no CUDA support
    hip: str | None = None  # ROCm builds

    @property
    def installed(self) -> bool:
        return self.version is not None

    @property
    def cpu_only(self) -> bool:
        return self.installed and not self.cuda and not self.hip


_VERSION_LINE = re.compile(r"^(cuda|hip|__version__)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def torch_build() -> TorchBuild:
    """The installed torch's version and CUDA build, from ``torch/version.py`` (no import)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return TorchBuild(None, None)
    values: dict[str, str | None] = {}
    try:
        spec = importlib.util.find_spec("torch")
        locations = list(spec.submodule_search_locations or []) if spec else []
        text = (Path(locations[0]) / "version.py").read_text(encoding="utf-8")
        for key, raw in _VERSION_LINE.findall(text):
            raw = raw.strip()
            values[key] = None if raw == "None" else raw.strip("'\"")
    except (OSError, IndexError, ValueError, ImportError):
        # no readable version.py: judge by the local version tag (+cpu, +cu126)
        tag = version.partition("+")[2]
        if tag.startswith("cu") and tag[2:].isdigit():
            values["cuda"] = f"{tag[2:-1]}.{tag[-1]}"
        elif not tag.startswith("cpu"):
            values["cuda"] = "unknown"
    return TorchBuild(values.get("__version__") or version, values.get("cuda"), values.get("hip"))


def _major(version: str) -> int | None:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


def hidden_by_env(env: dict[str, str] | None = None) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value when it hides every GPU ("", "-1", "none")."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    entries = [x.strip() for x in visible.split(",")]
    if not any(entries) or entries[0].lower() in ("none", "void") or entries[0].startswith("-"):
        return visible
    return None


def torch_gpu_problem(
    hardware: Any, *, build: TorchBuild | None = None, env: dict[str, str] | None = None
) -> str | None:
    """Why torch cannot use the NVIDIA GPUs in ``hardware`` (a probe), with the fix; None
    when there is no GPU to use or nothing stands in the way. Never imports torch."""
    gpus = getattr(hardware, "gpus", ())
    if not gpus:
        return None
    name = gpus[0].name
    build = build or torch_build()
    if not build.installed:
        return f"torch is not installed, so the {name} cannot train (fix: {INSTALL_HINT})"
    if build.cpu_only:
        return (
            f"torch {build.version} is a CPU-only build: it cannot use the {name} that the "
            f"driver shows, and training would run on the CPU (fix: {INSTALL_HINT})"
        )
    driver_cuda = getattr(hardware, "cuda_driver_version", "") or ""
    if build.cuda and driver_cuda and build.cuda != "unknown":
        need, have = _major(build.cuda), _major(driver_cuda)
        if need is not None and have is not None and need > have:
            driver = getattr(hardware, "driver_version", "") or "?"
            return (
                f"torch {build.version} is built for CUDA {build.cuda}, but driver {driver} "
                f"supports CUDA {driver_cuda} at most: torch cannot use the {name} (fix: "
                f"upgrade the NVIDIA driver, or install a torch built for CUDA {have}.x, "
                "listed at https://pytorch.org/get-started/locally/)"
            )
    hidden = hidden_by_env(env)
    if hidden is not None:
        return (
            f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU from torch (fix: unset it, or "
            "list the GPUs to use, e.g. CUDA_VISIBLE_DEVICES=0)"
        )
    return None


_RUNTIME_CHECK = """
import json
try:
    import torch
    ok = torch.cuda.is_available()
    out = {"available": ok, "count": torch.cuda.device_count() if ok else 0,
           "cuda": torch.version.cuda, "version": torch.__version__, "error": ""}
    if not ok and torch.version.cuda:
        try:
            torch.cuda.init()
        except Exception as e:
            out["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
except Exception as e:
    out = {"available": False, "count": 0, "cuda": None, "version": None,
           "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
print(json.dumps(out))
"""


def runtime_check(timeout: float = 120.0) -> dict[str, Any]:
    """``torch.cuda.is_available()`` and why not, in a subprocess (importing torch takes
    seconds; the caller's process stays light)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RUNTIME_CHECK],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, OSError, ValueError, IndexError) as e:
        return {"available": False, "count": 0, "error": f"the torch check failed: {e}"}


def torch_gpu_problem_runtime(hardware: Any) -> str | None:
    """``torch_gpu_problem`` plus the runtime check (for ``doctor``: takes seconds)."""
    problem = torch_gpu_problem(hardware)
    if problem or not getattr(hardware, "gpus", ()):
        return problem
    check = runtime_check()
    if check.get("available"):
        return None
    why = check.get("error") or "torch.cuda.is_available() is False"
    return (
        f"torch cannot use the {hardware.gpus[0].name}: {why} (fix: check that the NVIDIA "
        f"driver works (nvidia-smi) and matches torch's CUDA {check.get('cuda') or '?'}; "
        f"{INSTALL_HINT})"
    )


def no_cuda_reason() -> str:
    """Inside a process that has imported torch and found no CUDA: why, in one phrase."""
    import torch

    if not torch.version.cuda and not getattr(torch.version, "hip", None):
        return f"torch {torch.__version__} is a CPU-only build"
    hidden = hidden_by_env()
    if hidden is not None:
        return f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU"
    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU "
        "(no NVIDIA driver, or one too old for this torch)"
    )
