"""The Trainer callback that turns training progress into events, and obeys stop requests.

Only the main process writes events (several processes under ``accelerate launch`` would
otherwise write every line once each).

Before each checkpoint the free disk space is compared with what a checkpoint takes (the
last one's measured size; before the first, the trainable weights plus their two AdamW
moments): when it would not fit, the run stops cleanly at that step instead of dying in
the middle of ``optimizer.pt``.

Test-only fault hook: ``TUITUNE_TEST_OOM=STEP[:MIN_MICRO]`` raises CUDA's out-of-memory
error when step STEP begins while the micro-batch is at least MIN_MICRO (default 2), the
way a real GPU runs out at a larger batch and fits at a smaller one.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tuitune.core.hardware.probe import nvml_index_for_cuda
from tuitune.core.runs.events import EventWriter
from tuitune.runner.disk import free_bytes


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

                ordinal = int(os.environ.get("LOCAL_RANK", "0"))
                # cuda:N is not NVML's N under CUDA_VISIBLE_DEVICES or FASTEST_FIRST order
                index = nvml_index_for_cuda(ordinal)
                pynvml.nvmlInit()
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(
                    ordinal if index is None else index
                )
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
        self.checkpoint_bytes: int | None = None  # measured from the last checkpoint
        self.disk_stop: dict[str, Any] | None = None  # why the free-space check stopped
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

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        fault = os.environ.get("TUITUNE_TEST_OOM")
        if fault:
            step, _, micro = fault.partition(":")
            if state.global_step + 1 == int(step) and args.per_device_train_batch_size >= int(
                micro or 2
            ):
                import torch

                raise torch.OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB (injected by "
                    f"TUITUNE_TEST_OOM at micro-batch {args.per_device_train_batch_size})"
                )

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.step = state.global_step
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = True  # always a checkpoint at the end
        if self._stop_agreed(args) and not control.should_training_stop:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        if control.should_save:
            self._check_disk(args, state, control, kwargs.get("model"))

    def _check_disk(self, args: Any, state: Any, control: Any, model: Any) -> None:
        """Skip a checkpoint that would not fit and stop, naming the free space."""
        needed = self.checkpoint_bytes or _estimate_checkpoint_bytes(model)
        if not needed:
            return
        free = free_bytes(Path(args.output_dir))
        margin = max(needed // 10, 64 * 2**20)
        if free < 0 or free >= needed + margin:
            return
        control.should_save = False
        control.should_training_stop = True
        self.stopped_at = state.global_step
        gib = 2**30
        self.disk_stop = {
            "reason": f"disk nearly full: {free / gib:.2f} GiB free in {args.output_dir}, "
            f"a checkpoint needs about {(needed + margin) / gib:.2f} GiB; stopped at step "
            f"{state.global_step} before writing it",
            "fix": "free disk space (old runs, exports), then tuitune resume RUN",
            "free_bytes": free,
            "checkpoint_bytes": needed,
        }

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
        size = _tree_bytes(path)
        if size:
            self.checkpoint_bytes = size
        self.emit("checkpoint", step=state.global_step, path=str(path), bytes=size or None)


def _tree_bytes(root: Path) -> int:
    total = 0
    for p in root.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _estimate_checkpoint_bytes(model: Any) -> int:
    """Before the first checkpoint: trainable weights and their two AdamW moments (fp32),
    the full weights too for full fine-tuning, plus the tokenizer's few megabytes."""
    if model is None:
        return 0
    trainable = 0
    try:
        for p in model.parameters():
            if p.requires_grad:
                trainable += p.numel() * p.element_size()
    except Exception:  # noqa: BLE001 - an estimate only
        return 0
    return trainable * 3 + 16 * 2**20
