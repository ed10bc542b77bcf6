"""The recommender's 10% safety margin, seen by a user as "fits" vs "tight" (issue 19: a 0%
margin was caught only by snapshot SVGs)."""

from __future__ import annotations

import pytest

from tuitune.core.hardware.estimate import CUDA_CONTEXT_BYTES, GiB, TrainSetup, estimate, load_shape
from tuitune.core.hardware.probe import FakeGpu, FakeNVML, probe
from tuitune.core.hardware.recommend import (
    DEFAULT_MARGIN,
    FITS,
    NO,
    TIGHT,
    device_capacity,
    largest_fitting,
    needed_bytes,
    recommend,
    verdict,
    what_fits,
)

MODEL = "Qwen2.5-7B-Instruct"


def _gpu_with_capacity(capacity: float):
    """A fake GPU whose usable bytes (free minus the CUDA context) are ``capacity``."""
    total = 200.0
    free = (capacity + CUDA_CONTEXT_BYTES) / GiB
    return probe(nvml=FakeNVML([FakeGpu("NVIDIA Fake", total, total - free, (9, 0))]))


def test_verdict_just_above_and_just_below_the_margin() -> None:
    assert DEFAULT_MARGIN == 0.10
    est = estimate(load_shape(MODEL), TrainSetup(method="qlora", optim="paged_adamw_8bit"))
    need = needed_bytes(est)
    assert need > est.peak_reserved  # paged states count too
    assert verdict(est, int(need * 1.12)) == FITS
    assert verdict(est, int(need * 1.08)) == TIGHT
    assert verdict(est, int(need * 0.98)) == NO
    assert verdict(est, int(need * 1.08), margin=0.05) == FITS


@pytest.mark.parametrize(("factor", "expected"), [(1.12, FITS), (1.08, TIGHT), (0.97, NO)])
def test_what_fits_table_says_tight_inside_the_margin(factor: float, expected: str) -> None:
    big = {(r.model, r.method): r for r in what_fits(_gpu_with_capacity(150 * GiB))}
    need = big[(MODEL, "qlora")].bytes_needed
    hw = _gpu_with_capacity(need * factor)
    assert device_capacity(hw) == pytest.approx(need * factor, rel=1e-6)
    cell = {(r.model, r.method): r for r in what_fits(hw)}
    assert cell[(MODEL, "qlora")].bytes_needed == need
    assert cell[(MODEL, "qlora")].verdict == expected


def test_largest_fitting_skips_a_tight_model() -> None:
    rows = what_fits(_gpu_with_capacity(150 * GiB), methods=("qlora",))
    need = {r.model: r.bytes_needed for r in rows}[MODEL]
    hw = _gpu_with_capacity(need * 1.08)  # MODEL is tight here, so it is not suggested
    best = largest_fitting(hw, method="qlora")
    assert best is not None and best.model != MODEL
    assert best.bytes_needed * 1.10 <= device_capacity(hw)


def test_a_recommendation_keeps_the_margin_free() -> None:
    rec = recommend(_gpu_with_capacity(24 * GiB), MODEL, method="qlora")
    assert rec.fits and rec.margin == 0.10
    assert needed_bytes(rec.estimate) * 1.10 <= rec.capacity_bytes
    assert rec.headroom_bytes >= 0.10 * needed_bytes(rec.estimate)


def _est_needing(need: int, paged: int = 0):
    import dataclasses

    est = estimate(load_shape(MODEL), TrainSetup(method="lora"))
    return dataclasses.replace(est, peak_reserved=need - paged, outside_allocator=paged)


def test_verdict_boundaries_are_inclusive() -> None:
    est = _est_needing(4 * GiB, paged=GiB)
    assert needed_bytes(est) == 4 * GiB
    assert verdict(est, 5 * GiB, margin=0.25) == FITS  # 4 GiB * 1.25 == 5 GiB exactly
    assert verdict(est, 5 * GiB - 1, margin=0.25) == TIGHT
    assert verdict(est, 4 * GiB, margin=0.25) == TIGHT  # need == capacity: tight, not no
    assert verdict(est, 4 * GiB - 1, margin=0.25) == NO


def test_device_capacity_is_the_tightest_gpu_less_the_context_or_free_ram() -> None:
    import dataclasses

    two = probe(nvml=FakeNVML([FakeGpu("A", 24.0, 4.0, (9, 0)), FakeGpu("B", 24.0, 10.0, (9, 0))]))
    assert device_capacity(two) == two.smallest_gpu_free - CUDA_CONTEXT_BYTES
    assert two.smallest_gpu_free == pytest.approx(14 * GiB, rel=1e-6)
    full = probe(nvml=FakeNVML([FakeGpu("C", 8.0, 7.9, (9, 0))]))  # less free than the context
    assert device_capacity(full) == 0
    cpu = dataclasses.replace(probe(nvml=FakeNVML([])), ram_available_bytes=7 * GiB)
    assert device_capacity(cpu) == 7 * GiB


def test_what_fits_rows_carry_the_lean_setups_bytes() -> None:
    from tuitune.core.hardware.estimate import ModelShape
    from tuitune.core.models import catalog as model_catalog

    hw = _gpu_with_capacity(30 * GiB)
    rows = what_fits(hw, methods=("lora", "qlora"), family="Qwen2.5", seq_len=2048, micro_batch=2)
    entries = [e for e in model_catalog.CATALOG if e.family == "Qwen2.5"]
    assert len(rows) == 2 * len(entries) and {r.family for r in rows} == {"Qwen2.5"}
    for r in rows:
        entry = next(e for e in entries if e.name == r.model)
        shape = ModelShape.from_config(entry.config, name=entry.name)
        assert r.params == shape.param_count() and r.size == entry.size
        setup = TrainSetup(
            method=r.method, seq_len=2048, micro_batch=2, grad_ckpt=True, dtype="bf16",
            optim="paged_adamw_8bit" if r.method == "qlora" else "adamw_torch_fused",
        )  # fmt: skip
        assert r.bytes_needed == needed_bytes(estimate(shape, setup)), (r.model, r.method)
        assert r.verdict == verdict(estimate(shape, setup), device_capacity(hw))
    # a longer sequence needs more
    longer = {
        (r.model, r.method): r.bytes_needed for r in what_fits(hw, seq_len=4096, micro_batch=2)
    }
    assert all(longer[(r.model, r.method)] > r.bytes_needed for r in rows if r.method == "lora")


def test_what_fits_on_a_cpu() -> None:
    import dataclasses

    from tuitune.core.hardware.recommend import CPU_PRACTICAL_PARAMS

    cpu = dataclasses.replace(probe(nvml=FakeNVML([])), ram_available_bytes=200 * GiB)
    rows = what_fits(cpu, methods=("lora", "qlora"))
    for r in rows:
        if r.method == "qlora":
            assert r.verdict == NO and r.bytes_needed == 0  # bitsandbytes 4-bit needs CUDA
        elif r.params > CPU_PRACTICAL_PARAMS and r.bytes_needed * 1.1 <= 200 * GiB:
            assert r.verdict == TIGHT  # fits in RAM, but too slow to be worth it
        elif r.bytes_needed * 1.1 <= 200 * GiB:
            assert r.verdict == FITS
    small = {r.model: r for r in rows if r.method == "lora"}["SmolLM2-135M-Instruct"]
    assert small.verdict == FITS
    # CPU training runs in fp32 with plain AdamW: more bytes than the GPU's bf16 setup
    gpu = {(r.model, r.method): r for r in what_fits(_gpu_with_capacity(150 * GiB))}
    assert small.bytes_needed > gpu[("SmolLM2-135M-Instruct", "lora")].bytes_needed


def test_largest_fitting_is_the_biggest_model_that_fits() -> None:
    hw = _gpu_with_capacity(40 * GiB)
    rows = [r for r in what_fits(hw, methods=("lora",)) if r.verdict == FITS]
    best = largest_fitting(hw, method="lora")
    assert best.params == max(r.params for r in rows) and best.verdict == FITS
    assert largest_fitting(_gpu_with_capacity(0.01 * GiB), method="lora") is None
    fam = largest_fitting(hw, method="lora", family="SmolLM2")
    assert fam is None or fam.family == "SmolLM2"


def test_cpu_rows_use_the_cpu_setup_and_qlora_rows_are_complete() -> None:
    import dataclasses

    from tuitune.core.hardware.estimate import ModelShape
    from tuitune.core.models import catalog as model_catalog

    cpu = dataclasses.replace(probe(nvml=FakeNVML([])), ram_available_bytes=64 * GiB)
    rows = what_fits(cpu, methods=("qlora", "lora"), family="SmolLM2")
    entry = next(e for e in model_catalog.CATALOG if e.name == "SmolLM2-135M-Instruct")
    shape = ModelShape.from_config(entry.config, name=entry.name)
    cell = {(r.model, r.method): r for r in rows}
    q = cell[(entry.name, "qlora")]
    assert (q.model, q.family, q.size, q.params) == (
        entry.name, entry.family, entry.size, shape.param_count(),
    )  # fmt: skip
    assert q.bytes_needed == 0 and q.verdict == NO
    lean = TrainSetup(method="lora", seq_len=1024, micro_batch=1, grad_ckpt=True,
                      optim="adamw_torch", dtype="fp32")  # fmt: skip
    assert cell[(entry.name, "lora")].bytes_needed == needed_bytes(estimate(shape, lean))


def test_what_fits_and_largest_fitting_defaults_and_margin() -> None:
    hw = _gpu_with_capacity(40 * GiB)
    assert what_fits(hw) == what_fits(hw, seq_len=1024, micro_batch=1, margin=0.10)
    assert largest_fitting(hw) == largest_fitting(hw, method="lora", seq_len=1024)
    strict = what_fits(hw, margin=0.5)
    loose = what_fits(hw)
    assert sum(r.verdict == FITS for r in strict) < sum(r.verdict == FITS for r in loose)
    best = largest_fitting(hw, method="lora", seq_len=4096)
    row = {(r.model, r.method): r for r in what_fits(hw, methods=("lora",), seq_len=4096)}
    assert best == row[(best.model, "lora")]
