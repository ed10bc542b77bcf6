"""How long a run takes on a CPU, so "fits" there means time as well as memory.

On a CPU, memory is rarely the limit (a 0.5B model fits in 16 GiB of RAM) but time is: a
run that takes a day is not a run anyone makes. The figure is scaled from one measurement,
the quickstart (LoRA on SmolLM2-135M, 2 cores, about 140 tokens/s), by parameters, cores
and the method's cost per token; it is an order of magnitude, and it says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MEASURED_TOKENS_PER_S = 140.0  # quickstart: LoRA on SmolLM2-135M-Instruct, fp32, 2 cores
MEASURED_PARAMS = 134.5e6
MEASURED_CORES = 2
# Compute per trained token relative to LoRA: full SFT also computes every weight's gradient
# and steps the optimizer over all of them; DPO runs chosen and rejected through the policy
# and the reference; GRPO generates its completions first.
METHOD_COST = {"lora": 1.0, "qlora": 1.3, "full": 1.5, "dpo": 2.0, "reward": 1.0, "grpo": 4.0}
SLOW_SECONDS = 3600.0  # up to an hour: a run you wait for
TOO_SLOW_SECONDS = 8 * 3600.0  # beyond a working day: not worth it on this machine
FITS, SLOW, TOO_SLOW = "fits", "slow", "too slow"
_ORDER = ("fits", "tight", "slow", "too slow", "no")


@dataclass(frozen=True)
class CpuTime:
    """The time estimate of one run on this CPU and what it means."""

    steps: int
    tokens: int
    tokens_per_second: float
    seconds: float
    verdict: str  # fits | slow | too slow
    upper_bound: bool = False  # no length statistics: every example counted at max_length

    def line(self) -> str:
        about = "at most" if self.upper_bound else "about"
        return (
            f"{about} {format_duration(self.seconds)} on this CPU ({self.steps} steps, "
            f"{self.tokens / 1000:.0f}k tokens at ~{self.tokens_per_second:.0f} tokens/s, "
            f"scaled from the measured {MEASURED_TOKENS_PER_S:.0f} tokens/s of 135M LoRA on "
            f"{MEASURED_CORES} cores): {self.verdict}"
        )


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def tokens_per_second(params: float, cores: int, method: str) -> float:
    """Throughput scaled from the measurement: inverse in parameters, linear in cores."""
    cost = METHOD_COST.get(method, 1.0)
    scale = (MEASURED_PARAMS / max(params, 1.0)) * (max(cores, 1) / MEASURED_CORES)
    return MEASURED_TOKENS_PER_S * scale / cost


def run_tokens(
    spec: Any, n_examples: int | None, mean_tokens: float | None
) -> tuple[int, int, bool]:
    """(optimizer steps, trained tokens, upper bound?) of ``spec`` on ``n_examples`` rows."""
    per_step = spec.per_device_train_batch_size * spec.gradient_accumulation_steps
    upper = mean_tokens is None
    row = float(spec.max_length) if upper else min(float(mean_tokens), float(spec.max_length))
    # packed rows are filled to max_length
    tokens_per_row = float(spec.max_length) if spec.packing else row
    if spec.max_steps and spec.max_steps > 0:
        steps = int(spec.max_steps)
        tokens = steps * per_step * tokens_per_row
        if n_examples and not upper:  # never more than the data holds over its epochs
            tokens = min(tokens, spec.num_train_epochs * n_examples * row)
    else:
        if not n_examples:
            return 0, 0, upper
        steps = math.ceil(spec.num_train_epochs * n_examples / max(per_step, 1))
        if spec.packing and not upper:
            steps = math.ceil(
                spec.num_train_epochs * n_examples * row / (per_step * tokens_per_row)
            )
        tokens = spec.num_train_epochs * n_examples * row
    return steps, int(tokens), upper


def cpu_time(
    spec: Any, params: float, cores: int, n_examples: int | None, mean_tokens: float | None
) -> CpuTime | None:
    """The run's time on a CPU with ``cores``; None when neither steps nor data are known."""
    steps, tokens, upper = run_tokens(spec, n_examples, mean_tokens)
    if not steps or not tokens:
        return None
    tps = tokens_per_second(params, cores, spec.method)
    seconds = tokens / tps
    word = FITS if seconds <= SLOW_SECONDS else SLOW if seconds <= TOO_SLOW_SECONDS else TOO_SLOW
    return CpuTime(steps, tokens, tps, seconds, word, upper)


def worst(*verdicts: str) -> str:
    """The worse of memory and time verdicts (fits < tight < slow < too slow < no)."""
    known = [v for v in verdicts if v in _ORDER]
    return max(known, key=_ORDER.index) if known else ""
