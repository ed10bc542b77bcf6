"""The speed recipe's choices: each lever on or off for the right reason, memory respected.

Plain pytest, no torch: the hardware is a ``Device`` (or a probe-shaped object), the
estimate a small function where the test needs exact memory figures, tuitune's estimator
where it needs real ones.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from tuitune.core.hardware import recipe
from tuitune.core.hardware.recipe import Device, LengthProfile, choose_recipe, device_of
from tuitune.core.spec import TrainSpec

GiB = 2**30
H100 = Device("cuda", "NVIDIA H100 80GB HBM3", 80 * GiB, 79 * GiB, (9, 0))
CPU = Device("cpu", "x86_64", 24 * GiB, 20 * GiB)


@pytest.fixture
def lengths() -> list[int]:
    rng = random.Random(0)
    return [rng.randint(64, 1024) for _ in range(1000)]


@pytest.fixture(autouse=True)
def no_optional_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither flash-attn nor liger is installed unless a test says so."""
    monkeypatch.setattr(recipe, "flash_attn_available", lambda: False)
    monkeypatch.setattr(recipe, "liger_available", lambda: False)


def spec(**kw) -> TrainSpec:
    base = dict(
        model="Qwen2.5-0.5B",
        method="lora",
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=1024,
        bf16=True,
    )
    return TrainSpec(**{**base, **kw})


def flat_estimate(per_row: float, ckpt_factor: float = 0.25, static: float = 1.0):
    """Peak = static + micro * per_row GiB, times ckpt_factor of the activations with it on."""

    def fn(s: TrainSpec) -> int:
        act = s.per_device_train_batch_size * per_row
        if s.gradient_checkpointing:
            act *= ckpt_factor
        return int((static + act) * GiB)

    return fn


def test_cuda_sft_packs_with_flex_and_keeps_tokens_per_step(lengths: list[int]) -> None:
    r = choose_recipe(spec(), H100, lengths, flat_estimate(2.0))
    assert r.spec_overrides["packing"] is True
    assert r.spec_overrides["attn_implementation"] == "flex_attention"
    # 8 examples x ~544 tokens = ~4.3k real tokens = 4 packed rows of 1024
    micro, accum = (
        r.spec_overrides["per_device_train_batch_size"],
        r.spec_overrides["gradient_accumulation_steps"],
    )
    assert micro * accum == 4
    assert "padding" in r.lever("packing").reason
    applied = r.apply(spec())
    assert applied.packing and applied.per_device_train_batch_size == micro


def test_flash_attention_preferred_where_installed(
    monkeypatch: pytest.MonkeyPatch, lengths: list[int]
) -> None:
    monkeypatch.setattr(recipe, "flash_attn_available", lambda: True)
    r = choose_recipe(spec(), H100, lengths, flat_estimate(1.0))
    assert r.spec_overrides["attn_implementation"] == "flash_attention_2"
    # ... but not on a pre-Ampere GPU, nor in fp32
    old = Device("cuda", "V100", 32 * GiB, 30 * GiB, (7, 0))
    assert (
        choose_recipe(spec(), old, lengths, flat_estimate(1.0)).spec_overrides[
            "attn_implementation"
        ]
        == "flex_attention"
    )
    fp32 = spec(bf16=False)
    assert (
        choose_recipe(fp32, H100, lengths, flat_estimate(1.0)).spec_overrides["attn_implementation"]
        == "flex_attention"
    )


def test_cpu_uses_sdpa_no_liger_no_compile(
    monkeypatch: pytest.MonkeyPatch, lengths: list[int]
) -> None:
    monkeypatch.setattr(recipe, "liger_available", lambda: True)
    r = choose_recipe(spec(bf16=False), CPU, lengths, flat_estimate(0.5))
    assert r.spec_overrides["packing"] is True
    assert r.spec_overrides["attn_implementation"] == "sdpa"
    assert r.spec_overrides["use_liger_kernel"] is False
    assert "CUDA" in r.lever("use_liger_kernel").reason
    assert r.spec_overrides["torch_compile"] is False


def test_use_cpu_spec_ignores_the_gpu(lengths: list[int]) -> None:
    r = choose_recipe(spec(use_cpu=True), H100, lengths, flat_estimate(0.5))
    assert r.spec_overrides["attn_implementation"] == "sdpa"


def test_liger_on_only_with_cuda_package_and_sft(
    monkeypatch: pytest.MonkeyPatch, lengths: list[int]
) -> None:
    assert not choose_recipe(spec(), H100, lengths, flat_estimate(1.0)).spec_overrides[
        "use_liger_kernel"
    ]
    monkeypatch.setattr(recipe, "liger_available", lambda: True)
    assert choose_recipe(spec(), H100, lengths, flat_estimate(1.0)).spec_overrides[
        "use_liger_kernel"
    ]
    dpo = spec(method="dpo", data_format="preference")
    r = choose_recipe(dpo, H100, None, flat_estimate(1.0))
    assert not r.spec_overrides["use_liger_kernel"]
    assert not r.spec_overrides["packing"]
    assert "SFT" in r.lever("packing").reason


def test_checkpointing_only_when_memory_needs_it(lengths: list[int]) -> None:
    roomy = choose_recipe(spec(), H100, lengths, flat_estimate(2.0))
    assert roomy.spec_overrides["gradient_checkpointing"] is False
    assert roomy.lever("gradient_checkpointing").reason.startswith("off")
    # 4 rows x 2 GiB + 1 GiB = 9 GiB does not fit in 6 GiB; with checkpointing 3 GiB does
    tight = choose_recipe(spec(), H100, lengths, flat_estimate(2.0), memory_budget=6 * GiB)
    assert tight.spec_overrides["gradient_checkpointing"] is True
    assert "over the" in tight.lever("gradient_checkpointing").reason
    assert tight.estimated_peak_bytes <= 6 * GiB / 1.1


@pytest.mark.parametrize("budget_gib", [2.0, 3.5, 5.0, 8.0, 40.0])
def test_chosen_configuration_fits_its_own_estimate(budget_gib: float, lengths: list[int]) -> None:
    est = flat_estimate(1.5)
    r = choose_recipe(spec(), H100, lengths, est, memory_budget=int(budget_gib * GiB))
    chosen = r.apply(spec())
    assert est(chosen) * (1 + recipe.MEMORY_MARGIN) <= budget_gib * GiB
    # the same tokens per step (4 rows), whatever the split
    rows = chosen.per_device_train_batch_size * chosen.gradient_accumulation_steps
    assert 4 <= rows <= 4 * recipe.STEP_OVERSHOOT


def test_nothing_fits_reports_it(lengths: list[int]) -> None:
    r = choose_recipe(spec(), H100, lengths, flat_estimate(50.0, static=70.0))
    assert r.spec_overrides["gradient_checkpointing"] is True
    assert r.spec_overrides["per_device_train_batch_size"] == 1
    assert any("QLoRA" in n for n in r.notes)


def test_real_estimator_on_catalog_models(lengths: list[int]) -> None:
    """tuitune's own estimator: Qwen2.5-0.5B LoRA fits an H100 without checkpointing, and
    needs it under the plain-TRL baseline's 2.54 GiB (GPU.md)."""
    free = choose_recipe(spec(optim="adamw_torch_fused"), H100, lengths)
    assert free.spec_overrides["gradient_checkpointing"] is False
    assert free.estimated_peak_bytes < 79 * GiB / 1.1
    capped = choose_recipe(
        spec(optim="adamw_torch_fused"), H100, lengths, memory_budget=int(2.54 * GiB)
    )
    assert capped.spec_overrides["gradient_checkpointing"] is True
    assert capped.estimated_peak_bytes <= 2.54 * GiB / 1.1


def test_unknown_model_keeps_the_spec_memory_choices(lengths: list[int]) -> None:
    s = spec(model="/nonexistent/model", gradient_checkpointing=True)
    r = choose_recipe(s, H100, lengths)
    assert r.spec_overrides["gradient_checkpointing"] is True
    assert any("not estimated" in n for n in r.notes)


def test_length_profile_from_data_stats_histogram() -> None:
    stats = SimpleNamespace(token_histogram=[(0, 99, 10), (100, 199, 10), (900, 999, 0)])
    p = LengthProfile.of(stats)
    assert p is not None and p.count == 20
    assert p.mean == pytest.approx(99.5)
    # the longest of many draws approaches the top bin's midpoint
    assert p.expected_max(1) == pytest.approx(p.mean)
    assert p.expected_max(64) == pytest.approx(149.5, abs=0.01)


def test_device_of_reads_a_probe_shaped_object() -> None:
    gpu = SimpleNamespace(
        name="NVIDIA H100", total_bytes=80 * GiB, free_bytes=70 * GiB, compute_capability="9.0"
    )
    d = device_of(SimpleNamespace(gpus=[gpu, gpu]))
    assert d.cuda and d.count == 2 and d.compute_capability == (9, 0)
    assert d.capacity_bytes == 70 * GiB
    assert device_of(SimpleNamespace(gpus=[gpu]), use_cpu=True).kind == "cpu"
    cpu = device_of(SimpleNamespace(gpus=[], ram_available=8 * GiB))
    assert cpu.kind == "cpu" and cpu.total_bytes == 8 * GiB
    assert device_of(None).kind == "cpu"


def test_recipe_is_plain_data(lengths: list[int]) -> None:
    import json

    r = choose_recipe(spec(), H100, lengths, flat_estimate(1.0))
    data = json.loads(json.dumps(r.to_dict()))
    names = [lv["name"] for lv in data["levers"]]
    assert names == [
        "packing",
        "attn_implementation",
        "use_liger_kernel",
        "gradient_checkpointing",
        "micro_batch",
        "torch_compile",
    ]
    assert all(reason for _, _, reason in r.rows())
    assert set(r.spec_overrides) <= set(TrainSpec.__dataclass_fields__)


def test_reads_the_real_probe_result(lengths: list[int]) -> None:
    """``probe.probe()`` with a fake NVML (the edge) gives what the recipe needs."""
    probe = pytest.importorskip("tuitune.core.hardware.probe")
    hw = probe.probe(nvml=probe.FakeNVML([probe.FakeGpu(total_gib=80.0, used_gib=2.0)]))
    d = device_of(hw)
    assert d.cuda and d.compute_capability == (9, 0)
    assert 77 * GiB < d.capacity_bytes <= 78 * GiB
    r = choose_recipe(spec(), hw, lengths, flat_estimate(1.0))
    assert r.spec_overrides["attn_implementation"] == "flex_attention"
    cpu = probe.probe(nvml=probe.FakeNVML([]))
    assert device_of(cpu).kind in ("cpu", "mps")
    assert (
        choose_recipe(spec(), cpu, lengths, flat_estimate(0.1)).spec_overrides[
            "attn_implementation"
        ]
        == "sdpa"
    )


def test_near_uniform_lengths_are_not_packed() -> None:
    """4% padding: packing would gain little and round the tokens per step to whole rows."""
    uniform = [120 + (i % 11) for i in range(500)]
    r = choose_recipe(spec(per_device_train_batch_size=4, max_length=384), CPU, uniform)
    assert r.spec_overrides["packing"] is False
    assert "only" in r.lever("packing").reason and "padding" in r.lever("packing").reason


def test_fields_the_user_set_are_kept(lengths: list[int]) -> None:
    s = spec(gradient_checkpointing=True, packing=False, per_device_train_batch_size=2)
    fixed = {"gradient_checkpointing", "packing", "per_device_train_batch_size"}
    r = choose_recipe(s, H100, lengths, flat_estimate(0.5), fixed=fixed)
    assert r.spec_overrides["gradient_checkpointing"] is True  # it fits without; kept
    assert r.spec_overrides["packing"] is False
    assert r.spec_overrides["per_device_train_batch_size"] == 2
    assert "as you set it" in r.lever("gradient_checkpointing").reason
    assert "as you set it" in r.lever("packing").reason
    free = choose_recipe(s, H100, lengths, flat_estimate(0.5))
    assert free.spec_overrides["gradient_checkpointing"] is False
