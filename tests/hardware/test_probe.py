"""Hardware probe: a fake NVML stands in for the driver; no GPU is a normal result."""

from __future__ import annotations

import json

from tuitune.core.hardware.probe import (
    FakeGpu,
    FakeNVML,
    GiB,
    HardwareInfo,
    library_versions,
    probe,
)


def test_no_gpu_is_a_normal_result() -> None:
    hw = probe(nvml=FakeNVML([]))
    assert hw.gpus == () and hw.accelerator in ("cpu", "mps")
    assert "NVML" in hw.nvml_error
    assert hw.cpu_count >= 1 and hw.ram_total_bytes > 0
    assert "CPU only" in hw.summary() or "MPS" in hw.summary()


def test_real_probe_on_this_machine_does_not_raise() -> None:
    hw = probe()
    assert isinstance(hw, HardwareInfo)
    json.dumps(hw.to_dict())


def test_gpus_through_fake_nvml(monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNVML(
        [
            FakeGpu("NVIDIA H100 80GB HBM3", 80, 2.5, (9, 0), processes=[(123, 2.0)]),
            FakeGpu("Tesla T4", 15, 0.3, (7, 5)),
        ],
        cuda=12040,
    )
    hw = probe(nvml=nvml)
    h100, t4 = hw.gpus
    assert hw.accelerator == "cuda" and hw.cuda_driver_version == "12.4"
    assert h100.total_bytes == 80 * GiB and h100.free_bytes == int(77.5 * GiB)
    assert h100.bf16 and h100.flash_attention and h100.arch == "Hopper"
    assert h100.others_bytes == 2 * GiB and h100.processes[0].pid == 123
    assert not t4.bf16 and not t4.flash_attention
    assert hw.smallest_gpu_free == t4.free_bytes
    assert "2x" in hw.summary()


def test_cuda_visible_devices_filters(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    hw = probe(nvml=FakeNVML([FakeGpu(), FakeGpu("Tesla T4", 15, 0.3, (7, 5))]))
    assert [g.name for g in hw.gpus] == ["Tesla T4"]


def test_library_versions_lists_the_stack() -> None:
    versions = library_versions()
    assert versions["torch"] and versions["peft"] and versions["trl"]
    assert "flash-attn" in versions
