"""The training child's main loop: build the trainer, train, save, and always end with one
final event (finished, stopped or error), whatever happens.

Signals: the first SIGINT/SIGTERM finishes the current optimizer step, saves a checkpoint
and ends with ``stopped`` (``by`` whoever wrote ``RUN/stop-request.json``: ``tuitune stop``,
the wizard); a second one stops at once (the last complete checkpoint is still resumable).

Out of memory loses nothing: the ``oom`` event carries the memory checklist's advice and,
when the spec allows, the same trainer (model still loaded) continues from the last
complete checkpoint with the micro-batch halved and accumulation doubled, so the effective
batch, and with it the data position of every checkpoint, is unchanged. The new micro-batch
goes into ``spec.json`` at once, so ``tuitune resume`` does not run out of memory again.
transformers' ``auto_find_batch_size`` is not used: it multiplies the micro-batch by 0.9
without touching accumulation (the effective batch drifts) and restarts the loop from the
original checkpoint with the half-trained weights.

A full disk is named as such, with the free space: a ballast file in the run directory is
given up first so the final event can still be written, torn checkpoints are removed, and
the callback stops the run before a checkpoint that would not fit.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_text_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.runs.events import EventWriter
from tuitune.core.runs.nodes import multi_node_env
from tuitune.core.runs.process import last_checkpoint, remove_torn_checkpoints
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec
from tuitune.runner.build import build_trainer
from tuitune.runner.callback import EventCallback
from tuitune.runner.disk import (
    DISK_ERRNOS,
    FULL_ERRNOS,
    disk_error_message,
    disk_full_error,
    free_bytes,
)

BALLAST = ".tuitune-reserve"
BALLAST_BYTES = 1 << 20  # enough for the final event, the traceback tail and train.log
GiB = 2**30


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def is_local_main() -> bool:
    """Rank 0 of this machine: across machines each node keeps its own checkpoints."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


_PEER_LOST = ("connection reset", "connection closed", "broken pipe", "socket timeout")


def lost_peer(e: BaseException) -> bool:
    """A collective failed because a process on another machine is gone (killed, crashed,
    network): gloo and NCCL say so in a RuntimeError (DistError in recent torch)."""
    if not multi_node_env():
        return False
    import torch.distributed as dist

    text = str(e).lower()
    return isinstance(e, getattr(dist, "DistError", ())) or any(s in text for s in _PEER_LOST)


def check_same_data(spec: TrainSpec) -> None:
    """Across machines each node curates its own copy of the data: refuse to train when
    the copies differ (other files, another tuitune), which would silently train on both."""
    import hashlib

    import torch.distributed as dist

    if not (multi_node_env() and dist.is_available() and dist.is_initialized()):
        return
    digest = hashlib.sha256()
    if spec.train_file:
        with open(spec.train_file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, digest.hexdigest())
    if len(set(everyone)) > 1:
        ranks = [r for r, d in enumerate(everyone) if d != everyone[0]]
        raise TuituneError(
            f"the curated training data differs between machines (ranks {ranks} differ from "
            "rank 0)",
            path=spec.train_file,
            fix="give every machine the same data files and the same tuitune version",
        )


def common_checkpoint(run: RunDir, ckpt: Path | None) -> Path | None:
    """Across machines every node resumes from its own copy of a checkpoint: the newest
    step all of them hold complete (a node killed mid-save may lack the last one)."""
    import torch.distributed as dist

    if not (multi_node_env() and dist.is_available() and dist.is_initialized()):
        return ckpt
    mine = []
    if run.checkpoints.is_dir():
        for p in run.checkpoints.iterdir():
            name, _, num = p.name.partition("-")
            if name == "checkpoint" and num.isdigit() and (p / "trainer_state.json").is_file():
                mine.append(int(num))
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    common = set(everyone[0]).intersection(*everyone[1:])
    return run.checkpoints / f"checkpoint-{max(common)}" if common else None


def oom_advice(spec: TrainSpec) -> str:
    """The memory checklist in its order (as core.hardware.recommend applies it): smaller micro-batch
    with more accumulation, gradient checkpointing, QLoRA, shorter sequences, flash
    attention, bf16, lower LoRA rank, paged 8-bit AdamW; only the steps not taken yet."""
    m, a = spec.per_device_train_batch_size, spec.gradient_accumulation_steps
    tips = []
    if m > 1:
        tips.append(
            f"per_device_train_batch_size={m // 2} with gradient_accumulation_steps={a * 2} "
            "(same effective batch)"
        )
    if not spec.gradient_checkpointing:
        tips.append("gradient_checkpointing on")
    if spec.method in ("full", "lora"):
        tips.append("QLoRA (4-bit base weights)")
    tips.append(f"a shorter max_length than {spec.max_length}")
    if "flash" not in str(spec.attn_implementation):
        tips.append("flash attention (attn_implementation)")
    if not getattr(spec, "bf16", False):
        tips.append("bf16 instead of fp32")
    if spec.uses_peft and spec.lora_r > 8:
        tips.append(f"a lower LoRA rank than {spec.lora_r}")
    if "8bit" not in spec.optim:
        tips.append("optim=paged_adamw_8bit")
    return f"GPU out of memory at micro-batch {m}; try " + ", ".join(tips)


def is_oom(e: BaseException) -> bool:
    """CUDA/MPS out of memory, as accelerate's batch-size finder recognises it."""
    try:
        from accelerate.utils.memory import should_reduce_batch_size
    except ImportError:  # accelerate comes with TRL; be safe anyway
        return "out of memory" in str(e).lower()
    return bool(should_reduce_batch_size(e))


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _stop_requester(run: RunDir) -> str | None:
    """Who asked for the stop, from ``RUN/stop-request.json`` (recent ones only)."""
    import json

    path = run.root / "stop-request.json"
    try:
        if time.time() - path.stat().st_mtime > 600:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("by") or "") or None if isinstance(data, dict) else None


class Child:
    """One training child: its run, its event writer and its stop flag."""

    def __init__(self, spec: TrainSpec, run: RunDir, *, resume: bool) -> None:
        self.spec = spec
        self.run = run
        self.resume = resume
        self.writer = EventWriter(run.events) if is_main_process() else None
        self.stop_reason: str | None = None
        self.stop_by: str | None = None
        self.callback: Any = None
        self._built: tuple[Any, Any] | None = None  # (trainer, tokenizer), kept across OOMs
        self._initial: dict[str, Any] | None = None  # trainable weights before step 1
        if self.writer is not None:
            with contextlib.suppress(OSError):
                (run.root / BALLAST).write_bytes(b"\0" * BALLAST_BYTES)

    def emit(self, type: str, **data: Any) -> None:
        if self.writer is not None:
            self.writer.emit(type, **data)

    def _give_up_ballast(self) -> None:
        with contextlib.suppress(OSError):
            (self.run.root / BALLAST).unlink()

    # signals --------------------------------------------------------------------------
    def install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop_reason is not None:  # second signal: stop now
            raise KeyboardInterrupt(name)
        self.stop_by = _stop_requester(self.run) or (
            "Ctrl-C" if signum == signal.SIGINT else f"a {name} not sent by tuitune"
        )
        self.stop_reason = f"{name} received from {self.stop_by}"
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
                by=self.stop_by,
                reason=f"{e or 'interrupt'} twice: stopped without a new checkpoint",
            )
            return 130
        except TuituneError as e:
            self.emit("error", message=e.format(), traceback_tail="")
            print(f"tuitune runner: {e.format()}", file=sys.stderr)
            return 2
        except Exception as e:
            full = disk_full_error(e, self.run.root)
            if full is None and isinstance(e, OSError) and e.errno in DISK_ERRNOS:
                full = e
            if full is None:
                return self._crash(e)
            return self._disk_failure(full, traceback.format_exc())

    def _disk_failure(self, e: OSError, tb: str) -> int:
        """The end of a run the disk stopped: room for the last words first, then say so."""
        self._give_up_ballast()
        if is_main_process() and e.errno in FULL_ERRNOS:
            with contextlib.suppress(OSError):
                remove_torn_checkpoints(self.run)  # a half-written checkpoint frees space
        message, fix = disk_error_message(e)
        print(f"tuitune runner: {message} (fix: {fix})", file=sys.stderr, flush=True)
        # If the events file itself is unwritable, train.log has the line above.
        with contextlib.suppress(OSError):
            self.emit(
                "error",
                message=message,
                fix=fix,
                kind="disk",
                step=self._step(),
                checkpoint=self._last_ckpt(),
                free_bytes=free_bytes(self.run.root),
                traceback_tail=tail(tb),
            )
        return 3

    def _crash(self, e: BaseException) -> int:
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        line = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        extra: dict[str, Any] = {}
        if lost_peer(e):
            line = f"a training process on another machine is gone ({line})"
            extra = dict(
                kind="node_lost",
                fix="tuitune resume RUN here and tuitune resume WORKER_FOLDER on each other "
                "machine (the folder its replay printed); they meet again at the rendezvous",
            )
        try:
            self.emit("error", message=line, step=self._step(), traceback_tail=tail(tb), **extra)
        except OSError:
            self._give_up_ballast()
            with contextlib.suppress(OSError):
                self.emit("error", message=line, step=self._step(), traceback_tail=tail(tb))
        return 1

    def _step(self) -> int:
        return int(getattr(self.callback, "step", 0) or 0)

    def _last_ckpt(self) -> str | None:
        ckpt = last_checkpoint(self.run)
        return str(ckpt) if ckpt else None

    def _train_with_oom_retry(self) -> int:
        spec, resume = self.spec, self.resume
        while True:
            try:
                return self._train_once(spec, resume=resume)
            except Exception as e:
                if not is_oom(e):
                    raise
                oom_line = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                oom_tb = tail(traceback.format_exc())
            # Out of the except block: the traceback, and the activations its frames hold,
            # are gone before memory is given back.
            new = self._after_oom(spec, oom_line, oom_tb)
            if new is None:
                return 4
            spec, resume = new, True

    def _after_oom(self, spec: TrainSpec, line: str, tb: str) -> TrainSpec | None:
        """Give the memory back and return the spec to continue with (None: give up)."""
        import torch

        micro, accum = spec.per_device_train_batch_size, spec.gradient_accumulation_steps
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        retry = spec.auto_oom_retry and micro > 1 and spec.method != "grpo" and not distributed
        ckpt = self._last_ckpt()
        new = (
            spec.replace(
                per_device_train_batch_size=micro // 2, gradient_accumulation_steps=accum * 2
            )
            if retry
            else spec
        )
        trainer = self._built[0] if self._built else None
        if trainer is not None:
            trainer.optimizer, trainer.lr_scheduler = None, None
            with contextlib.suppress(Exception):
                trainer.accelerator.free_memory()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        why = ""
        if not retry:
            why = (
                "auto_oom_retry is off"
                if not spec.auto_oom_retry
                else "the micro-batch is already 1"
                if micro <= 1
                else "GRPO's generation batch is tied to the micro-batch"
                if spec.method == "grpo"
                else "several processes would have to agree on the new batch"
            )
        self.emit(
            "oom",
            step=self._step(),
            message=line,
            micro_batch=micro,
            gradient_accumulation_steps=accum,
            effective_batch=micro * accum,
            advice=oom_advice(spec),
            retry=retry,
            new_micro_batch=new.per_device_train_batch_size if retry else None,
            new_gradient_accumulation_steps=new.gradient_accumulation_steps if retry else None,
            resume_from=ckpt if retry else None,
            why_not=why or None,
        )
        if not retry:
            self.emit(
                "error",
                message=f"GPU out of memory at micro-batch {micro} ({why})",
                kind="oom",
                step=self._step(),
                checkpoint=ckpt,
                fix=oom_advice(spec),
                traceback_tail=tb,
            )
            return None
        if is_main_process():
            write_text_atomic(self.run.spec, new.to_json())  # resume must not OOM again
        if trainer is not None:
            args = trainer.args
            args.per_device_train_batch_size = new.per_device_train_batch_size
            args.per_device_eval_batch_size = min(
                args.per_device_eval_batch_size, new.per_device_train_batch_size
            )
            args.gradient_accumulation_steps = new.gradient_accumulation_steps
            trainer._train_batch_size = args.train_batch_size
            if ckpt is None and not self._restore_initial(trainer):
                self._built = None  # no checkpoint, no copy of the start: build afresh
                del trainer
                gc.collect()
        self.spec = new
        return new

    def _restore_initial(self, trainer: Any) -> bool:
        """Put the trainable weights back to where step 1 started (OOM before any checkpoint)."""
        if self._initial is None:
            return False
        import torch

        with torch.no_grad():
            for name, p in trainer.model.named_parameters():
                if name in self._initial:
                    p.copy_(self._initial[name].to(p.device))
        return True

    def _build(self, spec: TrainSpec) -> tuple[Any, Any]:
        callback = EventCallback(
            None, run_id=self.run.id, method=spec.method, model=spec.model, spec=spec.to_dict()
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
        return trainer, tokenizer

    def _train_once(self, spec: TrainSpec, *, resume: bool) -> int:
        ckpt = None
        if resume:
            if is_local_main():
                remove_torn_checkpoints(self.run)
            ckpt = last_checkpoint(self.run)
            self.emit(
                "log",
                message=f"resuming from {ckpt.name}"
                if ckpt
                else "no complete checkpoint: starting from the beginning",
            )
        if self._built is None:
            self._built = self._build(spec)
            check_same_data(spec)
        trainer, tokenizer = self._built
        if resume and multi_node_env():
            agreed = common_checkpoint(self.run, ckpt)
            if agreed != ckpt:
                self.emit(
                    "log",
                    message=f"{ckpt.name if ckpt else 'no checkpoint'} is not on every node: "
                    + (f"resuming from {agreed.name}" if agreed else "starting from the beginning"),
                )
            ckpt = agreed
        callback = self.callback
        callback.spec = spec.to_dict()
        callback.resumed_from = str(ckpt) if ckpt else None
        if self.stop_reason:
            self.emit(
                "stopped",
                step=0,
                checkpoint=str(ckpt) if ckpt else None,
                by=self.stop_by,
                reason=f"{self.stop_reason} before training started",
            )
            return 0
        if ckpt is None and self._initial is None and spec.uses_peft:
            self._initial = {
                n: p.detach().to("cpu", copy=True)
                for n, p in trainer.model.named_parameters()
                if p.requires_grad
            }
        t0 = time.monotonic()
        result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        step = trainer.state.global_step
        if callback.disk_stop is not None:
            self._give_up_ballast()
            self.emit(
                "stopped",
                step=step,
                checkpoint=self._last_ckpt(),
                by="the free-space check",
                kind="disk",
                **callback.disk_stop,
            )
            return 0
        if callback.stopped_at is not None:
            self.emit(
                "stopped",
                step=step,
                checkpoint=callback.last_checkpoint or self._last_ckpt(),
                by=self.stop_by,
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
            micro_batch=spec.per_device_train_batch_size,
            gradient_accumulation_steps=spec.gradient_accumulation_steps,
        )
        self._give_up_ballast()
        return 0

    def save_final(self, trainer: Any, tokenizer: Any, spec: TrainSpec) -> Path:
        """Adapter (or full model) and tokenizer into RUN/adapter, swapped in atomically:
        the new one is written beside it, the old one renamed away, the new one renamed in,
        and only then is the old one deleted. A crash at any point leaves a whole adapter
        at RUN/adapter or at RUN/.adapter.old-PID (never half of one)."""
        final = self.run.adapter
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        # should_save: global rank 0, or each machine's rank 0 across machines.
        if trainer.args.should_save:
            shutil.rmtree(tmp, ignore_errors=True)
        trainer.save_model(str(tmp))
        if trainer.args.should_save:
            tokenizer.save_pretrained(str(tmp))
            # DPO/GRPO over an SFT adapter keep a frozen copy named "ref": not part of the result.
            shutil.rmtree(tmp / "ref", ignore_errors=True)
            (tmp / "training_args.bin").unlink(missing_ok=True)
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
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
        child._give_up_ballast()  # whatever the end, the reserve is not left behind
        if child.writer is not None:
            child.writer.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tuitune.runner")
    parser.add_argument("spec", help="TrainSpec JSON (RUN/spec.json)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    return run_child(args.spec, resume=args.resume)
