"""What this machine can train on: NVIDIA GPUs through NVML, Apple MPS, CPU RAM and cores.

The fast path is NVML only (``pynvml`` from nvidia-ml-py, milliseconds); torch is never
imported here unless ``probe(check_mps_with_torch=True)`` is asked for. No GPU is a normal
result, not an error. Tests inject a fake NVML module through ``probe(nvml=...)``.

Which GPUs training sees is decided the way CUDA decides it, not by NVML's numbering:
``CUDA_VISIBLE_DEVICES`` may name ordinals, UUIDs (``GPU-8f3c...``, a unique prefix is
enough) or MIG instances (``MIG-...``), and its ordinals count in CUDA's order, which is
PCI bus order only under ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (the default, FASTEST_FIRST, puts
the fastest device first). ``probe()`` returns the visible GPUs in CUDA's order, each with
its NVML index, UUID and PCI bus id (``cuda_visible`` does the mapping).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

GiB = 2**30


@dataclass(frozen=True)
class GpuProcess:
    """Another process holding memory on a GPU (ours included when training)."""

    pid: int
    used_bytes: int
    name: str = ""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    used_bytes: int
    compute_capability: tuple[int, int]
    processes: tuple[GpuProcess, ...] = ()
    uuid: str = ""  # "GPU-..." as NVML and CUDA_VISIBLE_DEVICES spell it
    pci_bus_id: str = ""  # "00000000:3B:00.0"
    cuda_index: int | None = None  # the ordinal torch will use (cuda:N), when visible
    mig: str = ""  # the MIG instance CUDA_VISIBLE_DEVICES selected on this GPU

    @property
    def bf16(self) -> bool:
        """bfloat16 needs Ampere (compute capability 8.0) or newer."""
        return self.compute_capability >= (8, 0)

    @property
    def flash_attention(self) -> bool:
        """FlashAttention-2 kernels exist for Ampere, Ada and Hopper (cc >= 8.0)."""
        return self.compute_capability >= (8, 0)

    @property
    def others_bytes(self) -> int:
        """Memory other processes hold: what training cannot use."""
        return sum(p.used_bytes for p in self.processes)

    @property
    def arch(self) -> str:
        return _ARCH_NAMES.get(self.compute_capability[0], f"sm_{self.compute_capability[0]}")


_ARCH_NAMES = {
    6: "Pascal",
    7: "Volta/Turing",
    8: "Ampere/Ada",
    9: "Hopper",
    10: "Blackwell",
    12: "Blackwell",
}


@dataclass(frozen=True)
class HardwareInfo:
    """One probe of the machine; plain data so the TUI and replay can show or store it."""

    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str = ""
    cuda_driver_version: str = ""  # the CUDA version the driver supports, e.g. "12.4"
    nvml_error: str = ""  # why NVML gave nothing ("" when it worked or there is no NVIDIA GPU)
    mps: bool = False  # Apple Metal (Apple silicon macOS)
    cpu_count: int = 1
    ram_total_bytes: int = 0
    ram_available_bytes: int = 0
    platform: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_cuda(self) -> bool:
        return bool(self.gpus)

    @property
    def accelerator(self) -> str:
        """ "cuda", "mps" or "cpu": where training would run."""
        return "cuda" if self.gpus else "mps" if self.mps else "cpu"

    @property
    def smallest_gpu_free(self) -> int:
        """Free bytes on the tightest GPU (data parallel is limited by it)."""
        return min((g.free_bytes for g in self.gpus), default=0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accelerator"] = self.accelerator
        return d

    def summary(self) -> str:
        """One line for status bars: '1x NVIDIA H100 80GB HBM3, 79.1 GiB free'."""
        if self.gpus:
            names = sorted({g.name for g in self.gpus})
            free = sum(g.free_bytes for g in self.gpus) / GiB
            return f"{len(self.gpus)}x {', '.join(names)}, {free:.1f} GiB free"
        if self.mps:
            return f"Apple MPS, {self.ram_total_bytes / GiB:.0f} GiB unified memory"
        return (
            f"CPU only: {self.cpu_count} cores, {self.ram_available_bytes / GiB:.1f} GiB RAM free"
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _import_nvml() -> Any:
    import pynvml

    return pynvml


def _probe_nvml(nvml: Any) -> tuple[list[GpuInfo], str, str, str]:
    """(gpus, driver, cuda version, error). Any NVML failure means no usable NVIDIA GPU."""
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA GPU
        return [], "", "", f"{type(e).__name__}: {e}"
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        try:
            cv = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda = f"{cv // 1000}.{cv % 1000 // 10}"
        except Exception:
            cuda = ""
        gpus = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                cc = tuple(int(x) for x in nvml.nvmlDeviceGetCudaComputeCapability(handle))
            except Exception:
                cc = (0, 0)
            procs: list[GpuProcess] = []
            for getter in (
                "nvmlDeviceGetComputeRunningProcesses",
                "nvmlDeviceGetGraphicsRunningProcesses",
            ):
                try:
                    for p in getattr(nvml, getter)(handle):
                        used = getattr(p, "usedGpuMemory", None) or 0
                        procs.append(GpuProcess(pid=int(p.pid), used_bytes=int(used)))
                except Exception:  # not supported on this GPU/driver (e.g. inside containers)
                    pass
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    used_bytes=int(mem.used),
                    compute_capability=(cc[0], cc[1]),
                    processes=tuple(procs),
                    uuid=_optional(lambda h=handle: _text(nvml.nvmlDeviceGetUUID(h))),
                    pci_bus_id=_optional(
                        lambda h=handle: _text(nvml.nvmlDeviceGetPciInfo(h).busId)
                    ),
                    mig=",".join(_mig_uuids(nvml, handle)),
                )
            )
        return gpus, driver, cuda, ""
    except Exception as e:
        return [], "", "", f"{type(e).__name__}: {e}"
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _optional(get: Any) -> str:
    """An NVML field some drivers or containers do not report: empty when absent."""
    try:
        return str(get() or "")
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return ""


def _mig_uuids(nvml: Any, handle: Any) -> list[str]:
    """The MIG instances of one GPU (empty when MIG is off or unsupported)."""
    out: list[str] = []
    try:
        count = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except Exception:  # noqa: BLE001 - no MIG on this GPU or driver
        return out
    for i in range(count):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
            out.append(_text(nvml.nvmlDeviceGetUUID(mig)))
        except Exception:  # noqa: BLE001 - an empty MIG slot
            continue
    return out


def cuda_order(gpus: list[GpuInfo], device_order: str | None) -> list[GpuInfo]:
    """NVML's GPUs in the order CUDA numbers them.

    ``PCI_BUS_ID``: by PCI bus id (what nvidia-smi shows). Otherwise CUDA's FASTEST_FIRST:
    the most capable device first (compute capability, then memory), ties in bus order; the
    CUDA documentation leaves the rest unspecified, which is why a machine with mixed GPUs
    should set ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.
    """

    def bus(g: GpuInfo) -> tuple[str, int]:
        return (g.pci_bus_id.lower(), g.index)

    if (device_order or "").upper() == "PCI_BUS_ID":
        return sorted(gpus, key=bus)
    return sorted(
        gpus, key=lambda g: (tuple(-x for x in g.compute_capability), -g.total_bytes, bus(g))
    )


def cuda_visible(
    gpus: list[GpuInfo], visible: str | None, device_order: str | None = None
) -> tuple[list[GpuInfo], list[str]]:
    """The GPUs CUDA will see, in its numbering (``cuda_index``), and notes for the user.

    ``visible`` is ``CUDA_VISIBLE_DEVICES``: ordinals (in CUDA's order), ``GPU-`` UUIDs or
    unique prefixes of them, ``MIG-`` instance UUIDs. As CUDA does, parsing stops at the
    first entry that names no device; "" or "-1" hides every GPU.
    """
    import dataclasses

    ordered = cuda_order(gpus, device_order)
    notes: list[str] = []
    mixed = len({(g.name, g.compute_capability) for g in gpus}) > 1
    if mixed and (device_order or "").upper() != "PCI_BUS_ID":
        notes.append(
            "different GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA numbers the "
            "fastest first, not as nvidia-smi does (set CUDA_DEVICE_ORDER=PCI_BUS_ID)"
        )
    if visible is None:
        return [dataclasses.replace(g, cuda_index=i, mig="") for i, g in enumerate(ordered)], notes
    chosen: list[GpuInfo] = []
    for raw in visible.split(","):
        token = raw.strip()
        found: GpuInfo | None = None
        mig = ""
        if token.lstrip("-").isdigit():
            n = int(token)
            found = ordered[n] if 0 <= n < len(ordered) else None
        elif token.upper().startswith("MIG-"):
            found = next((g for g in ordered if token in g.mig.split(",")), None)
            mig = token
        elif token:
            key = token if token.upper().startswith("GPU-") else f"GPU-{token}"
            hits = [g for g in ordered if g.uuid and g.uuid.lower().startswith(key.lower())]
            found = hits[0] if len(hits) == 1 else None
        if found is None or any(c.index == found.index and not mig for c in chosen):
            if token and token != "-1":
                notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {token!r} names no GPU here: CUDA ignores it "
                    "and every entry after it"
                )
            break
        chosen.append(dataclasses.replace(found, cuda_index=len(chosen), mig=mig))
    if mig_chosen := [g for g in chosen if g.mig]:
        notes.append(
            f"{len(mig_chosen)} MIG instance(s) selected: CUDA sees one MIG device per process, "
            "and memory figures are the whole GPU's"
        )
    return chosen, notes


def nvml_index_for_cuda(ordinal: int, nvml: Any = None) -> int | None:
    """The NVML index of ``cuda:ordinal`` in this process's environment (None: unknown)."""
    hw = probe(nvml=nvml)
    g = next((g for g in hw.gpus if g.cuda_index == ordinal), None)
    return g.index if g is not None else None


def _ram() -> tuple[int, int]:
    """(total, available) bytes of RAM, from /proc/meminfo or sysconf."""
    try:
        info: dict[str, int] = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
        return info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total // 2
    except (ValueError, OSError, AttributeError):
        return 0, 0


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _mps_cheap() -> bool:
    """Apple silicon macOS: MPS is there (torch confirms it later when training)."""
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def probe(*, nvml: Any = None, check_mps_with_torch: bool = False) -> HardwareInfo:
    """Probe GPUs, MPS, RAM and cores. ``nvml`` replaces the pynvml module (tests)."""
    notes: list[str] = []
    if nvml is None:
        try:
            nvml = _import_nvml()
        except ImportError:
            nvml = None
            notes.append("nvidia-ml-py is not installed: NVIDIA GPUs cannot be probed")
    gpus: list[GpuInfo] = []
    driver = cuda = err = ""
    if nvml is not None:
        gpus, driver, cuda, err = _probe_nvml(nvml)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus:
        seen = len(gpus)
        gpus, more = cuda_visible(gpus, visible, os.environ.get("CUDA_DEVICE_ORDER"))
        notes.extend(more)
        if visible is not None and not gpus:
            notes.append(f"CUDA_VISIBLE_DEVICES={visible!r}: training will not see the GPUs")
        elif visible is not None and len(gpus) < seen:
            names = ", ".join(f"cuda:{g.cuda_index}=NVML {g.index}" for g in gpus)
            notes.append(f"CUDA_VISIBLE_DEVICES={visible}: only those GPUs are used ({names})")
    mps = False
    if not gpus:
        mps = _mps_cheap()
        if mps and check_mps_with_torch:
            import torch

            mps = bool(torch.backends.mps.is_available())
    total, avail = _ram()
    return HardwareInfo(
        gpus=tuple(gpus),
        driver_version=driver,
        cuda_driver_version=cuda,
        nvml_error=err,
        mps=mps,
        cpu_count=_cpu_count(),
        ram_total_bytes=total,
        ram_available_bytes=avail,
        platform=f"{platform.system()} {platform.machine()}",
        notes=tuple(notes),
    )


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries training depends on (None: not installed)."""
    import importlib.metadata

    out: dict[str, str | None] = {}
    for dist in (
        "torch",
        "transformers",
        "peft",
        "trl",
        "accelerate",
        "datasets",
        "bitsandbytes",
        "nvidia-ml-py",
        "flash-attn",
        "liger-kernel",
        "textual",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


# ---------------------------------------------------------------------------------------
# A fake NVML for tests and demos: same call surface as pynvml for what probe() uses.
# ---------------------------------------------------------------------------------------


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    total_gib: float = 80.0
    used_gib: float = 0.5
    cc: tuple[int, int] = (9, 0)
    processes: list[tuple[int, float]] = field(default_factory=list)  # (pid, GiB)
    uuid: str = ""  # "" -> GPU-fake-<index> when handed to FakeNVML
    pci_bus_id: str = ""  # "" -> 00000000:<index + 1>:00.0
    mig_uuids: list[str] = field(default_factory=list)


class FakeNVML:
    """A module-like object: ``probe(nvml=FakeNVML([FakeGpu(...)]))``; no GPUs = no driver."""

    NVMLError = FakeNVMLError

    def __init__(
        self, gpus: list[FakeGpu] | None = None, *, driver: str = "560.35.03", cuda: int = 12060
    ):
        self.gpus = list(gpus or [])
        for i, g in enumerate(self.gpus):
            g.uuid = g.uuid or f"GPU-fake-{i:04d}-0000-0000-000000000000"
            g.pci_bus_id = g.pci_bus_id or f"00000000:{i + 1:02X}:00.0"
        self.driver = driver
        self.cuda = cuda

    def nvmlInit(self) -> None:
        if not self.gpus:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, h: FakeGpu) -> bytes:
        return h.name.encode()

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> Any:
        from types import SimpleNamespace

        total = int(h.total_gib * GiB)
        used = int(h.used_gib * GiB)
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGpu) -> tuple[int, int]:
        return h.cc

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(pid=pid, usedGpuMemory=int(g * GiB)) for pid, g in h.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeGpu) -> list[Any]:
        return []

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        return h if isinstance(h, str) else h.uuid

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(busId=h.pci_bus_id.encode())

    def nvmlDeviceGetMaxMigDeviceCount(self, h: FakeGpu) -> int:
        if not h.mig_uuids:
            raise FakeNVMLError("Not Supported")
        return len(h.mig_uuids)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: FakeGpu, i: int) -> str:
        return h.mig_uuids[i]
