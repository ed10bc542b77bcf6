"""The Trainer callback that turns training progress into events, and obeys stop requests.

Only the main process writes events (several processes under ``accelerate launch`` would
otherwise write every line once each).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tuitune.core.events import EventWriter


def memory_gib() -> float:
    """Peak reserved GPU memory, or the process's resident memory on CPU."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_reserved() / 2**30, 3)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**30, 3)
    except (OSError, ValueError, IndexError):
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


class GpuUtil:
    """GPU utilisation through NVML when there is one; None otherwise (probed once)."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._tried = False

    def __call__(self) -> float | None:
        if not self._tried:
            self._tried = True
            try:
                import pynvml

                pynvml.nvmlInit()
                index = int(os.environ.get("LOCAL_RANK", "0"))
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            except Exception:  # no NVML, no GPU: utilisation is simply unknown
                self._handle = None
        if self._handle is None:
            return None
        try:
            import pynvml

            return float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        except Exception:
            return None


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class EventCallback(TrainerCallback):
    """Writes start/step/eval/checkpoint events and turns a stop request into save + stop."""

    def __init__(
        self,
        writer: EventWriter | None,
        *,
        run_id: str,
        method: str,
        model: str,
        spec: dict[str, Any],
        resumed_from: str | None = None,
    ) -> None:
        self.writer = writer
        self.run_id = run_id
        self.method = method
        self.model = model
        self.spec = spec
        self.resumed_from = resumed_from
        self.stop_requested: str | None = None
        self.step = 0
        self.stopped_at: int | None = None
        self.last_checkpoint: str | None = None
        self._gpu = GpuUtil()
        self._t_last = time.monotonic()
        self._tokens_last = 0

    def emit(self, type: str, **data: Any) -> None:
        if self.writer is not None:
            self.writer.emit(type, **data)

    def request_stop(self, reason: str) -> None:
        """Called from the signal handler: finish the current step, checkpoint, stop."""
        self.stop_requested = reason

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        self._t_last = time.monotonic()
        self._tokens_last = int(state.num_input_tokens_seen or 0)
        self.emit(
            "start",
            run_id=self.run_id,
            method=self.method,
            model=self.model,
            pid=os.getpid(),
            total_steps=state.max_steps,
            start_step=state.global_step,
            resumed_from=self.resumed_from,
            num_processes=args.world_size,
            spec=self.spec,
        )

    def _stop_agreed(self, args: Any) -> bool:
        """Under several processes every rank must stop at the same step, or the next
        collective hangs: the flag is max-reduced across ranks."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return bool(self.stop_requested)
        import torch

        flag = torch.tensor([1 if self.stop_requested else 0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and not self.stop_requested:
            self.stop_requested = "stop requested on another process"
        return bool(flag.item())

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.step = state.global_step
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = True  # always a checkpoint at the end
        if self._stop_agreed(args) and not control.should_training_stop:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        dt = now - self._t_last
        tps = (tokens - self._tokens_last) / dt if dt > 0 and tokens > self._tokens_last else None
        self._t_last, self._tokens_last = now, tokens
        extra = {
            k: _num(v)
            for k, v in logs.items()
            if k.startswith("rewards/") or k in ("reward", "reward_std", "accuracy", "margin")
        }
        self.emit(
            "step",
            step=state.global_step,
            epoch=_num(logs.get("epoch", state.epoch)),
            loss=_num(logs.get("loss")),
            learning_rate=_num(logs.get("learning_rate")),
            grad_norm=_num(logs.get("grad_norm")),
            tokens_per_second=round(tps, 1) if tps else None,
            tokens_seen=tokens,
            memory_gib=memory_gib(),
            gpu_util=self._gpu(),
            **extra,
        )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
        metrics = {k: _num(v) for k, v in (metrics or {}).items() if k.startswith("eval_")}
        for k in [
            k
            for k in metrics
            if k.endswith("_per_second") or k in ("eval_runtime", "eval_num_tokens")
        ]:
            metrics.pop(k)
        self.emit("eval", step=state.global_step, **metrics)

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.last_checkpoint = str(path)
        self.emit("checkpoint", step=state.global_step, path=str(path))
