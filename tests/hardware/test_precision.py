"""One dtype policy (core.hardware.precision) and the torch-vs-NVML check (core.hardware.torch_device)."""

from __future__ import annotations

import json

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.hardware import precision
from tuitune.core.hardware.probe import FakeGpu, FakeNVML, probe
from tuitune.core.hardware.torch_device import (
    TorchBuild,
    hidden_by_env,
    torch_build,
    torch_gpu_problem,
)
from tuitune.core.spec import TrainSpec


def _row(p: precision.Precision) -> tuple:
    return (p.load, p.trainable, p.autocast, p.bnb_compute)


def test_policy_table() -> None:
    """(load, trainable, autocast, bnb compute) per method and device."""
    h100 = dict(device="cuda", bf16_supported=True)
    v100 = dict(device="cuda", bf16_supported=False)
    assert _row(precision.policy("full", **h100)) == ("fp32", "fp32", "bf16", None)
    assert _row(precision.policy("full", **v100)) == ("fp32", "fp32", "fp16", None)
    assert _row(precision.policy("lora", **h100)) == ("bf16", "fp32", "bf16", None)
    assert _row(precision.policy("lora", **v100)) == ("fp16", "fp32", "fp16", None)
    assert _row(precision.policy("qlora", **h100)) == ("bf16", "bf16", "bf16", "bf16")
    assert _row(precision.policy("qlora", **v100)) == ("fp16", "fp32", "fp16", "fp16")
    for method in ("full", "lora", "qlora", "dpo", "grpo"):
        for device in ("cpu", "mps"):
            p = precision.policy(method, device=device)
            assert (p.load, p.trainable, p.autocast) == ("fp32", "fp32", "none")
    plain = precision.policy("full", plain_trl=True, **h100)
    assert _row(plain) == ("bf16", "bf16", "bf16", None)
    assert "master" in precision.policy("full", **v100).reason
    assert precision.policy("dpo").kind == "lora"


def test_from_spec_follows_the_spec_flags() -> None:
    t4 = TrainSpec(method="qlora", fp16=True)
    p = precision.from_spec(t4, cuda=True)
    assert p.bnb_compute == "fp16" and p.training_flags == {"bf16": False, "fp16": True}
    assert precision.from_spec(t4, cuda=False).bnb_compute == "fp32"
    dpo4 = TrainSpec(method="dpo", bf16=True, load_in_4bit=True)
    assert precision.from_spec(dpo4, cuda=True).kind == "qlora"
    full = TrainSpec(method="full", bf16=True)
    assert precision.from_spec(full, cuda=True).load == "fp32"
    assert precision.from_spec(full.replace(use_cpu=True), cuda=True).autocast == "none"
    assert precision.spec_wants_gpu(full) and not precision.spec_wants_gpu(TrainSpec())
    assert not precision.spec_wants_gpu(t4.replace(use_cpu=True, fp16=False))
    with pytest.raises(TuituneError):
        precision.from_flags(
            "lora", bf16=True, fp16=True, use_cpu=False, load_in_4bit=False, cuda=True
        )


def test_load_kwargs_for_training_and_inference() -> None:
    import torch

    full = precision.policy("full", device="cuda", bf16_supported=True)
    assert precision.load_kwargs(full, training=True, cuda=True) == {"dtype": torch.float32}
    assert precision.load_kwargs(full, training=False, cuda=True) == {"dtype": torch.bfloat16}
    t4 = precision.policy("qlora", device="cuda", bf16_supported=False)
    kw = precision.load_kwargs(t4, training=False, cuda=True, device_index=1)
    assert kw["dtype"] is torch.float16 and kw["device_map"] == {"": 1}
    q = kw["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype is torch.float16
    assert "device_map" not in precision.load_kwargs(t4, training=True, cuda=False)


# ---- torch against NVML -------------------------------------------------------------------


def _hw(cuda: int = 12040):
    return probe(nvml=FakeNVML([FakeGpu(name="Tesla T4", total_gib=15, cc=(7, 5))], cuda=cuda))


def test_this_cpu_torch_cannot_use_a_gpu_nvml_sees() -> None:
    build = torch_build()
    assert build.installed and build.cpu_only  # the CPU wheel installed here (+cpu)
    problem = torch_gpu_problem(_hw(), env={})
    assert problem is not None and "CPU-only build" in problem and "Tesla T4" in problem
    assert "download.pytorch.org" in problem  # the fix
    assert torch_gpu_problem(probe(nvml=FakeNVML([]))) is None  # no GPU: nothing to use


def test_cuda_major_mismatch_and_hidden_gpus() -> None:
    cu13 = TorchBuild("2.11.0+cu130", "13.0")
    problem = torch_gpu_problem(_hw(cuda=12040), build=cu13, env={})
    assert problem is not None and "CUDA 13.0" in problem and "12.4" in problem
    assert "upgrade the NVIDIA driver" in problem
    cu128 = TorchBuild("2.11.0+cu128", "12.8")  # minor versions are compatible
    assert torch_gpu_problem(_hw(cuda=12040), build=cu128, env={}) is None
    hidden = torch_gpu_problem(_hw(), build=cu128, env={"CUDA_VISIBLE_DEVICES": "-1"})
    assert hidden is not None and "CUDA_VISIBLE_DEVICES" in hidden and "unset" in hidden
    assert hidden_by_env({"CUDA_VISIBLE_DEVICES": ""}) == ""
    assert hidden_by_env({"CUDA_VISIBLE_DEVICES": "0,1"}) is None
    missing = torch_gpu_problem(_hw(), build=TorchBuild(None, None), env={})
    assert missing is not None and "not installed" in missing


def test_doctor_names_the_torch_problem_with_a_fake_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuitune.cli import main
    from tuitune.core.hardware import probe as probe_mod

    fake = FakeNVML([FakeGpu(name="NVIDIA A100-SXM4-40GB", total_gib=40, cc=(8, 0))])
    monkeypatch.setattr(probe_mod, "_import_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert main(["doctor", "--family", "Qwen2.5"]) == 0
    out = capsys.readouterr().out
    assert "problem   torch" in out and "CPU-only build" in out and "A100" in out
    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "CPU-only build" in data["torch"]["problem"] and data["torch"]["cuda"] is None
