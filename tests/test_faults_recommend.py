"""The recommender's 10% safety margin, seen by a user as "fits" vs "tight" (issue 19: a 0%
margin was caught only by snapshot SVGs)."""

from __future__ import annotations

import pytest

from tuitune.core.estimate import CUDA_CONTEXT_BYTES, GiB, TrainSetup, estimate, load_shape
from tuitune.core.probe import FakeGpu, FakeNVML, probe
from tuitune.core.recommend import (
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
