"""The training child's main loop: build the trainer, train, save, and always end with one
final event (finished, stopped or error), whatever happens.

Signals: the first SIGINT/SIGTERM finishes the current optimizer step, saves a checkpoint
and ends with ``stopped``; a second one stops at once (the last complete checkpoint is
still resumable). CUDA out-of-memory becomes an ``oom`` event and, when the spec allows,
one retry per halving of the micro-batch with doubled accumulation (same effective batch).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.events import EventWriter
from tuitune.core.rundir import RunDir
from tuitune.core.spec import TrainSpec

_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def oom_advice(spec: TrainSpec) -> str:
    m, a = spec.per_device_train_batch_size, spec.gradient_accumulation_steps
    tips = []
    if m > 1:
        tips.append(
            f"per_device_train_batch_size={m // 2} with gradient_accumulation_steps={a * 2} "
            "(same effective batch)"
        )
    if not spec.gradient_checkpointing:
        tips.append("gradient_checkpointing on")
    tips.append(f"a shorter max_length than {spec.max_length}")
    if spec.method in ("full", "lora"):
        tips.append("QLoRA (4-bit base weights)")
    return f"GPU out of memory at micro-batch {m}; try " + ", ".join(tips)


def disk_error_message(e: OSError) -> tuple[str, str]:
    """(message, fix) for an OSError that is the disk's or the directory's fault."""
    where = f" writing {e.filename}" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full{where}",
            "free disk space (old checkpoints, exports), then tuitune resume RUN",
        )
    return (
        f"cannot write{where}: {e.strerror or e}",
        "make the run directory writable, then tuitune resume RUN",
    )


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Child:
    """One training child: its run, its event writer and its stop flag."""

    def __init__(self, spec: TrainSpec, run: RunDir, *, resume: bool) -> None:
        self.spec = spec
        self.run = run
        self.resume = resume
        self.writer = EventWriter(run.events) if is_main_process() else None
        self.stop_reason: str | None = None
        self.callback: Any = None

    def emit(self, type: str, **data: Any) -> None:
        if self.writer is not None:
            self.writer.emit(type, **data)

    # signals --------------------------------------------------------------------------
    def install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop_reason is not None:  # second signal: stop now
            raise KeyboardInterrupt(name)
        self.stop_reason = f"{name} received"
        if self.callback is not None:
            self.callback.request_stop(self.stop_reason)

    # the run --------------------------------------------------------------------------
    def main(self, *, signals: bool = True) -> int:
        if signals:
            self.install_signals()
        try:
            return self._train_with_oom_retry()
        except KeyboardInterrupt as e:
            self.emit(
                "stopped",
                step=self._step(),
                checkpoint=self._last_ckpt(),
                reason=f"{e or 'interrupt'} twice: stopped without a new checkpoint",
            )
            return 130
        except TuituneError as e:
            self.emit("error", message=e.format(), traceback_tail="")
            print(f"tuitune runner: {e.format()}", file=sys.stderr)
            return 2
        except OSError as e:
            if e.errno not in _DISK_ERRNOS:
                return self._crash(e)
            message, fix = disk_error_message(e)
            print(f"tuitune runner: {message} (fix: {fix})", file=sys.stderr)
            # If the events file itself is unwritable, train.log has the line above.
            with contextlib.suppress(OSError):
                self.emit(
                    "error",
                    message=message,
                    fix=fix,
                    kind="disk",
                    traceback_tail=tail(traceback.format_exc()),
                )
            return 3
        except Exception as e:
            return self._crash(e)

    def _crash(self, e: BaseException) -> int:
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        self.emit("error", message=f"{type(e).__name__}: {e}", traceback_tail=tail(tb))
        return 1

    def _step(self) -> int:
        return int(getattr(self.callback, "step", 0) or 0)

    def _last_ckpt(self) -> str | None:
        from tuitune.core.runs import last_checkpoint

        ckpt = last_checkpoint(self.run)
        return str(ckpt) if ckpt else None

    def _train_with_oom_retry(self) -> int:
        import torch

        spec, resume = self.spec, self.resume
        while True:
            try:
                return self._train_once(spec, resume=resume)
            except torch.OutOfMemoryError:
                micro = spec.per_device_train_batch_size
                retry = self.spec.auto_oom_retry and micro > 1
                self.emit(
                    "oom",
                    step=self._step(),
                    micro_batch=micro,
                    advice=oom_advice(spec),
                    retry=retry,
                )
                self.callback = None
                gc.collect()
                torch.cuda.empty_cache()
                if not retry:
                    self.emit(
                        "error",
                        message="CUDA out of memory",
                        kind="oom",
                        fix=oom_advice(spec),
                        traceback_tail=tail(traceback.format_exc()),
                    )
                    return 4
                # A checkpoint's data position assumes its micro-batch: start over cleanly.
                shutil.rmtree(self.run.checkpoints, ignore_errors=True)
                spec = spec.replace(
                    per_device_train_batch_size=micro // 2,
                    gradient_accumulation_steps=spec.gradient_accumulation_steps * 2,
                )
                resume = False
                self.emit(
                    "log",
                    message=f"retrying with micro-batch {micro // 2}, "
                    f"accumulation {spec.gradient_accumulation_steps}",
                )

    def _train_once(self, spec: TrainSpec, *, resume: bool) -> int:
        from tuitune.core.runs import last_checkpoint, remove_torn_checkpoints
        from tuitune.runner.build import build_trainer
        from tuitune.runner.callback import EventCallback

        ckpt = None
        if resume:
            if is_main_process():
                remove_torn_checkpoints(self.run)
            ckpt = last_checkpoint(self.run)
            self.emit(
                "log",
                message=f"resuming from {ckpt.name}"
                if ckpt
                else "no complete checkpoint: starting from the beginning",
            )
        callback = EventCallback(
            None,
            run_id=self.run.id,
            method=spec.method,
            model=spec.model,
            spec=spec.to_dict(),
            resumed_from=str(ckpt) if ckpt else None,
        )
        callback.writer = self.writer
        if self.stop_reason:
            callback.request_stop(self.stop_reason)
        self.callback = callback
        self.emit("log", message=f"loading {spec.method} trainer for {spec.model}")
        trainer, tokenizer = build_trainer(spec, self.run, [callback])
        train_rows = len(trainer.train_dataset) if trainer.train_dataset is not None else 0
        if train_rows == 0:
            raise TuituneError(
                "no training example is left after tokenization (every answer lies beyond "
                f"max_length={spec.max_length} tokens, so nothing would be trained)",
                path=spec.train_file,
                fix="raise max_length or shorten the prompts",
            )
        if self.stop_reason:
            self.emit(
                "stopped",
                step=0,
                checkpoint=str(ckpt) if ckpt else None,
                reason=f"{self.stop_reason} before training started",
            )
            return 0
        t0 = time.monotonic()
        result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        step = trainer.state.global_step
        if callback.stopped_at is not None:
            self.emit(
                "stopped",
                step=step,
                checkpoint=callback.last_checkpoint or self._last_ckpt(),
                reason=callback.stop_requested,
            )
            return 0
        out = self.save_final(trainer, tokenizer, spec)
        key = "adapter_dir" if spec.uses_peft else "model_dir"
        self.emit(
            "finished",
            step=step,
            **{key: str(out)},
            train_runtime=round(time.monotonic() - t0, 2),
            train_loss=result.training_loss,
            tokens_seen=int(trainer.state.num_input_tokens_seen or 0),
        )
        return 0

    def save_final(self, trainer: Any, tokenizer: Any, spec: TrainSpec) -> Path:
        """Adapter (or full model) and tokenizer into RUN/adapter, swapped in atomically."""
        final = self.run.adapter
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        if trainer.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        trainer.save_model(str(tmp))
        if trainer.accelerator.is_main_process:
            tokenizer.save_pretrained(str(tmp))
            # DPO/GRPO over an SFT adapter keep a frozen copy named "ref": not part of the result.
            shutil.rmtree(tmp / "ref", ignore_errors=True)
            (tmp / "training_args.bin").unlink(missing_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        trainer.accelerator.wait_for_everyone()
        return final


def run_child(spec_path: str | Path, *, resume: bool = False, signals: bool = True) -> int:
    """Train from ``spec_path`` in this process; the exit code of the child.

    ``signals=False`` leaves the caller's signal handlers alone (in-process use in tests).
    """
    try:
        spec = TrainSpec.load(spec_path)
    except TuituneError as e:
        print(f"tuitune runner: {e.format()}", file=sys.stderr)
        run = RunDir(Path(spec_path).resolve().parent)
        with contextlib.suppress(OSError):
            EventWriter(run.events).emit("error", message=e.format(), traceback_tail="")
        return 2
    run = RunDir(Path(spec.output_dir) if spec.output_dir else Path(spec_path).resolve().parent)
    try:
        child = Child(spec, run, resume=resume)
    except OSError as e:
        message, fix = disk_error_message(e)
        print(f"tuitune runner: {message} (fix: {fix})", file=sys.stderr)
        return 3
    try:
        return child.main(signals=signals)
    finally:
        if child.writer is not None:
            child.writer.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tuitune.runner")
    parser.add_argument("spec", help="TrainSpec JSON (RUN/spec.json)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    return run_child(args.spec, resume=args.resume)
