"""LoRA optimizer states with plain AdamW: the runner's optimizer really holds them after a
step, and the estimator counts exactly those bytes (issue 19: setting them to zero was caught
only through the paged-optimizer path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runner import data, make_spec, train  # noqa: F401 - the data fixture

from tuitune.core.estimate import TrainSetup, estimate, load_shape


@pytest.mark.parametrize("optim", ["adamw_torch", "adamw_torch_fused"])
@pytest.mark.parametrize(("r", "targets"), [(16, ("all-linear",)), (8, ("q_proj", "v_proj"))])
def test_lora_adamw_states_are_two_fp32_copies_of_the_adapter(optim, r, targets) -> None:
    shape = load_shape("Qwen2.5-7B")
    for dtype in ("bf16", "fp32"):
        setup = TrainSetup(method="lora", lora_r=r, lora_targets=targets, optim=optim, dtype=dtype)
        est = estimate(shape, setup)
        n = shape.lora_params(r, targets)
        assert est.trainable_params == n
        # PEFT keeps adapters in fp32 on a bf16 base; AdamW keeps exp_avg and exp_avg_sq alike
        assert est.components["optimizer_states"] == 2 * 4 * n
        assert est.components["trainable_params"] == 4 * n
        assert est.outside_allocator == 0


def test_lora_with_8bit_and_sgd_states() -> None:
    shape = load_shape("Qwen2.5-7B")
    n = shape.lora_params(16, ("all-linear",))
    sgd = estimate(shape, TrainSetup(method="lora", optim="sgd"))
    assert sgd.components["optimizer_states"] == 0
    eight = estimate(shape, TrainSetup(method="lora", optim="adamw_8bit"))
    assert 0 < eight.components["optimizer_states"] < 2 * 4 * n / 3
    paged = estimate(shape, TrainSetup(method="lora", optim="paged_adamw_8bit"))
    assert paged.components["optimizer_states"] == 0
    assert paged.outside_allocator == eight.components["optimizer_states"]


def test_runner_lora_adamw_holds_the_states_the_estimator_counts(
    tiny_model: Path,
    data,  # noqa: F811
    tmp_path: Path,
    one_thread,
) -> None:
    import torch

    spec = make_spec(tiny_model, data, tmp_path / "run", max_steps=3, save_steps=3, eval_file="")
    rc, run = train(spec)
    assert rc == 0
    saved = torch.load(
        run.checkpoints / "checkpoint-3" / "optimizer.pt", map_location="cpu", weights_only=True
    )
    states = saved["state"]
    # LoRA's B starts at zero and warmup makes step 1's learning rate zero, so A's gradient
    # first moves at step 3: every state is non-zero by then.
    assert states, "the optimizer holds no state after three steps"
    nbytes = 0
    for st in states.values():
        for key in ("exp_avg", "exp_avg_sq"):
            t = st[key]
            assert t.dtype == torch.float32 and bool(t.abs().sum() > 0), key
            nbytes += t.numel() * t.element_size()
    setup = TrainSetup(
        method="lora",
        lora_r=spec.lora_r,
        lora_targets=tuple(spec.lora_target_modules),
        optim="adamw_torch",
    )
    est = estimate(load_shape(tiny_model), setup)
    assert nbytes == est.components["optimizer_states"]
