"""Common training GPUs, bundled, so a plan can size a machine you do not have yet.

``tuitune plan SESSION --gpu "A100-80GB x4"`` builds the same ``HardwareInfo`` the NVML probe
would return on that machine (idle, nothing else on the GPUs) and plans on it. Memory is what
NVML reports as the total on that card (a little under the marketing figure); peak TFLOP/s are
the datasheets' dense tensor-core figures (no sparsity) for bf16, or fp16 where the card has no
bf16. They are figures to compare cards by, not measured throughput.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuitune.core.errors import TuituneError
from tuitune.core.hardware.probe import GpuInfo, HardwareInfo

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True)
class GpuModel:
    """One card: NVML name, total memory, compute capability and peak dense TFLOP/s."""

    key: str  # what --gpu takes, e.g. "A100-80GB"
    name: str  # what NVML calls it
    memory_bytes: int
    compute_capability: tuple[int, int]
    tflops_16bit: float  # dense bf16 (fp16 where there is no bf16)
    aliases: tuple[str, ...] = ()

    @property
    def bf16(self) -> bool:
        return self.compute_capability >= (8, 0)


GPUS: tuple[GpuModel, ...] = (
    GpuModel("H200", "NVIDIA H200", 143771 * MiB, (9, 0), 989.0, ("H200-141GB",)),
    GpuModel("H100-80GB", "NVIDIA H100 80GB HBM3", 81559 * MiB, (9, 0), 989.0, ("H100",)),
    GpuModel("H100-PCIe", "NVIDIA H100 PCIe", 81559 * MiB, (9, 0), 756.0),
    GpuModel("A100-80GB", "NVIDIA A100-SXM4-80GB", 81920 * MiB, (8, 0), 312.0),
    GpuModel("A100-40GB", "NVIDIA A100-SXM4-40GB", 40960 * MiB, (8, 0), 312.0, ("A100",)),
    GpuModel("L40S", "NVIDIA L40S", 46068 * MiB, (8, 9), 362.0),
    GpuModel("A6000", "NVIDIA RTX A6000", 49140 * MiB, (8, 6), 155.0, ("RTX-A6000",)),
    GpuModel("L4", "NVIDIA L4", 23034 * MiB, (8, 9), 121.0),
    GpuModel("A10G", "NVIDIA A10G", 23028 * MiB, (8, 6), 125.0, ("A10",)),
    GpuModel("RTX-4090", "NVIDIA GeForce RTX 4090", 24564 * MiB, (8, 9), 165.0, ("4090",)),
    GpuModel("RTX-3090", "NVIDIA GeForce RTX 3090", 24576 * MiB, (8, 6), 71.0, ("3090",)),
    GpuModel("V100-32GB", "Tesla V100-SXM2-32GB", 32768 * MiB, (7, 0), 125.0),
    GpuModel("V100-16GB", "Tesla V100-SXM2-16GB", 16384 * MiB, (7, 0), 125.0, ("V100",)),
    GpuModel("T4", "Tesla T4", 15360 * MiB, (7, 5), 65.0),
)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("nvidia", "").replace("geforce", ""))


def find_gpu(name: str) -> GpuModel | None:
    want = _norm(name)
    for g in GPUS:
        if want in {_norm(k) for k in (g.key, g.name, *g.aliases)}:
            return g
    return None


_COUNT = re.compile(r"^\s*(?P<name>.+?)\s*(?:[x*]\s*(?P<n>\d+))?\s*$", re.IGNORECASE)


def parse_gpu(text: str) -> tuple[GpuModel, int]:
    """``"A100-80GB x4"``, ``"H100"``, ``"T4*2"`` -> (card, count); TuituneError otherwise."""
    m = _COUNT.match(text or "")
    card = find_gpu(m.group("name")) if m else None
    count = int(m.group("n") or 1) if m else 0
    if card is None or not 1 <= count <= 64:
        raise TuituneError(
            f"unknown GPU {text!r}" if card is None else f"GPU count {count} out of range 1-64",
            fix="use NAME or 'NAME xN' with NAME one of " + ", ".join(g.key for g in GPUS),
        )
    return card, count


def hardware_for(text: str) -> HardwareInfo:
    """The probe result an idle machine with these GPUs would give (for planning only)."""
    card, count = parse_gpu(text)
    gpus = tuple(
        GpuInfo(
            index=i,
            name=card.name,
            total_bytes=card.memory_bytes,
            free_bytes=card.memory_bytes,
            used_bytes=0,
            compute_capability=card.compute_capability,
        )
        for i in range(count)
    )
    return HardwareInfo(
        gpus=gpus,
        cpu_count=0,
        platform="planned (--gpu)",
        notes=(f"planned for {count}x {card.key} from the bundled GPU table, not probed",),
    )
