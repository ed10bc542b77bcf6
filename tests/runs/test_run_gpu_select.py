"""Which GPUs a run trains on, as CUDA counts them: ordinals in CUDA's order, UUIDs and
their prefixes, MIG instances, CUDA_DEVICE_ORDER; and the child's allocator setting. The
driver is a fake NVML with UUIDs and PCI bus ids."""

from __future__ import annotations

from tuitune.core.hardware.probe import FakeGpu, FakeNVML, probe
from tuitune.core.runs.process import ALLOC_CONF, child_environment


def _mixed() -> FakeNVML:
    """NVML (PCI) order: a T4 on bus 0x1A, an H100 on 0x3B, a second T4 on 0x5E."""
    return FakeNVML(
        [
            FakeGpu(
                "Tesla T4", 15, 0.3, (7, 5), uuid="GPU-aaaa1111-t4", pci_bus_id="00000000:1A:00.0"
            ),
            FakeGpu(
                uuid="GPU-bbbb2222-h100",
                pci_bus_id="00000000:3B:00.0",
                mig_uuids=["MIG-h100-slice-1"],
            ),
            FakeGpu(
                "Tesla T4", 15, 0.3, (7, 5), uuid="GPU-cccc3333-t4", pci_bus_id="00000000:5E:00.0"
            ),
        ]
    )


def test_ordinals_count_in_cudas_fastest_first_order(monkeypatch):
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    hw = probe(nvml=_mixed())
    (g,) = hw.gpus
    assert g.name.startswith("NVIDIA H100") and g.index == 1 and g.cuda_index == 0
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in n for n in hw.notes)


def test_pci_bus_order_matches_nvidia_smi(monkeypatch):
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    hw = probe(nvml=_mixed())
    assert [(g.uuid, g.cuda_index) for g in hw.gpus] == [
        ("GPU-cccc3333-t4", 0),
        ("GPU-aaaa1111-t4", 1),
    ]
    assert not any("PCI_BUS_ID" in n and "fastest" in n for n in hw.notes)


def test_uuids_prefixes_and_mig_instances(monkeypatch):
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-cccc3333-t4,bbbb")
    hw = probe(nvml=_mixed())
    assert [(g.index, g.cuda_index) for g in hw.gpus] == [(2, 0), (1, 1)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-h100-slice-1")
    (mig,) = probe(nvml=_mixed()).gpus
    assert mig.index == 1 and mig.mig == "MIG-h100-slice-1"
    # an ambiguous prefix ("GPU-" matches all) names no device: CUDA stops there
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-,2")
    hw = probe(nvml=_mixed())
    assert [g.uuid for g in hw.gpus] == ["GPU-aaaa1111-t4"]
    assert any("'GPU-'" in n for n in hw.notes)


def test_no_visible_gpu(monkeypatch):
    for value in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        hw = probe(nvml=_mixed())
        assert hw.gpus == () and any("will not see the GPUs" in n for n in hw.notes)


def test_child_gets_expandable_segments_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    assert (
        child_environment()["PYTORCH_CUDA_ALLOC_CONF"] == ALLOC_CONF == "expandable_segments:True"
    )
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    assert child_environment()["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
