"""Throughput: tuitune's plan against the plain TRL script, side by side in one run.

For each case both arms train the same architecture (random weights from the published
config), on the same variable-length chat data, for one epoch (so both see exactly the same
real tokens), with the same max length, loss (assistant tokens only), optimizer, learning
rate schedule and seed, and about the same real tokens per optimizer step:

- baseline: what a user writes with plain TRL, as ../shared/bench/trl_baseline_grid.py did for
  ../shared/GPU.md: ``SFTTrainer`` defaults (batches padded to their longest example,
  gradient checkpointing on), bf16 on a GPU, LoRA r16 / alpha 32 on all linear layers;
- tuitune: a session holding the user's settings, its speed levers chosen by tuitune's plan
  (``tuitune.core.training.plan``; the recipe, ``choose_recipe``, where the plan is not in the tree)
  for this machine and this data, capped on a GPU at the baseline's measured peak memory, and
  launched by ``tuitune.core.training.plan.launch_plan``, the launch ``tuitune replay`` itself calls
  (data preparation, fit gate, ``start_run``, the runner). The replay command has no memory cap
  of its own, so the capped plan is made here (``make_plan`` with the probe's free memory cut
  to the baseline's peak) and launched through the same function.

Stability: the arms are interleaved and repeated (B T, T B, B T, ...), each arm's rate is taken
over the steps after warm-up, and the median over repetitions is reported with its min-max.
The speed-up is the ratio of the medians. On a shared CPU one arm alone varies by +-30%
between runs; interleaving puts both arms under the same load.

Printed per case and arm: real (non-padding) tokens/s (median, min-max), peak memory
(``torch.cuda.max_memory_reserved`` on a GPU; peak RSS, ``VmHWM``, on a CPU), both ratios,
model FLOPs utilisation (6 x N x tokens/s over the device peak, N = parameters in matmuls; on a
CPU against a measured fp32 matmul peak; 6N overstates LoRA, which computes no weight gradients
for frozen layers) and the eval loss after the epoch of the first repetition (token-weighted
over the assistant tokens of a held-out set, unpacked, computed by the same code for both arms).

    python benchmarks/throughput.py --cpu                 # tiny Llama, LoRA and full SFT
    python benchmarks/throughput.py                       # GPU: the three cases of the speed goal
    python benchmarks/throughput.py --case qwen05-lora --repeats 3 --json results.json

Nothing about GPUs is claimed from a CPU run: it checks that the levers are applied and the
comparison machinery works. On the lent GPU the cases run inside ``benchmarks/gpu_proof.py
--part speed``; how to carry the wheels there: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import chat_data  # noqa: E402
import gpu_configs  # noqa: E402
from gpu_configs import SpeedCase as Case  # noqa: E402
from replay_run import read_events, write_session  # noqa: E402

from tuitune.core.hardware.recipe import Device  # noqa: E402
from tuitune.core.spec import TrainSpec  # noqa: E402

GiB = 2**30
# Eval loss of tuitune's arm may exceed the baseline's by at most this fraction.
QUALITY_BOUND = 0.03

TINY = dict(
    model_type="llama", hidden_size=128, intermediate_size=344, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, vocab_size=2048, tie_word_embeddings=True,
)  # fmt: skip

CPU_CASES = (
    Case("tiny-lora", "tiny-llama", "lora", 8, 16, 128, 480, 32, 2e-3, "adamw_torch", 1.0,
         repeats=2, cpu=True),
    Case("tiny-full", "tiny-llama", "full", 8, 16, 128, 480, 32, 1e-3, "adamw_torch", 1.0,
         repeats=2, cpu=True),
)  # fmt: skip
CASES = {c.name: c for c in (*gpu_configs.SPEED, *CPU_CASES)}

# Dense bf16 tensor-core peaks (FLOP/s) by device name fragment.
GPU_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def gpu_peak_flops(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of the GPU called ``name``: the plan's GPU table
    (``tuitune.core.hardware.gpu_table``), else the small table above."""
    try:
        from tuitune.core.hardware.gpu_table import find_gpu
    except ImportError:
        find_gpu = None  # type: ignore[assignment]
    card = find_gpu(name) if find_gpu else None
    if card is not None:
        return card.tflops_16bit * 1e12
    return next((v for k, v in GPU_PEAK.items() if k in name), None)


def arch_config(arch: str) -> dict[str, Any]:
    return dict(TINY) if arch == "tiny-llama" else gpu_configs.arch_config(arch)


# --------------------------------------------------------------------------------------
# Model and data
# --------------------------------------------------------------------------------------


def build_model(case: Case, directory: Path, *, gpu: bool) -> Path:
    """Random weights from the architecture's config and a word-level tokenizer whose every
    word is one token (so example lengths are exact), saved like a hub model."""
    return chat_data.build_model(
        arch_config(case.arch),
        directory,
        device="cuda" if gpu else "cpu",
        dtype="bf16" if gpu else "fp32",
        max_length=case.max_len,
    )


def make_rows(case: Case, n: int, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Chat examples whose rendered length is uniform in [min_len, max_len] tokens."""
    vocab = int(arch_config(case.arch)["vocab_size"])
    return chat_data.chat_rows(n, (case.min_len, case.max_len), seed=seed, vocab=vocab)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    chat_data.write_jsonl(path, rows)


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


class PeakRss:
    """Samples a child's peak resident memory (VmHWM) until it exits."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                return
            time.sleep(0.1)

    def join(self) -> int:
        self._thread.join(timeout=5)
        return self.peak

    def join_when_done(self) -> int:
        self._thread.join(timeout=3600)
        return self.peak


def steady_rate(points: list[tuple[float, int]], warm: int) -> tuple[float, int]:
    """(real tokens/s, steps timed) from (time, cumulative tokens) per optimizer step."""
    if len(points) <= warm + 1:
        warm = max(0, len(points) - 2)
    (t0, n0), (t1, n1) = points[warm], points[-1]
    return ((n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")), len(points) - 1 - warm


def matmul_peak_cpu() -> float:
    """fp32 matmul FLOP/s this CPU reaches with torch's threads (best of a few)."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(8):
            a @ b
        best = max(best, 8 * 2 * 1024**3 / (time.perf_counter() - t))
    return best


def matmul_params(model_dir: Path) -> int:
    """Parameters that take part in matmuls per token: all but an untied input embedding."""
    from tuitune.core.hardware import estimate

    shape = estimate.load_shape(model_dir)
    untied_embedding = 0 if shape.tie_word_embeddings else shape.embedding_params()
    return shape.param_count() - untied_embedding


def gpu_device() -> Device:
    """The GPU through NVML, so this parent process never holds a CUDA context."""
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    mem = pynvml.nvmlDeviceGetMemoryInfo(h)
    name = pynvml.nvmlDeviceGetName(h)
    name = name.decode() if isinstance(name, bytes) else name
    cc = pynvml.nvmlDeviceGetCudaComputeCapability(h)
    return Device("cuda", name, int(mem.total), int(mem.free), tuple(cc))


def cpu_device() -> Device:
    """This CPU, with the memory available now as its capacity."""
    import platform

    import psutil

    free = int(psutil.virtual_memory().available)
    return Device("cpu", platform.machine(), free, free)


# --------------------------------------------------------------------------------------
# The baseline arm: plain TRL, in a child process
# --------------------------------------------------------------------------------------


def baseline_child(config_path: str) -> int:
    """Train the plain TRL script from a JSON config; print one RESULT line."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        TrainerCallback,
    )
    from trl import SFTConfig, SFTTrainer

    cfg = json.loads(Path(config_path).read_text())
    gpu = torch.cuda.is_available() and not cfg["cpu"]
    rows = [json.loads(line) for line in Path(cfg["train_file"]).read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(cfg["model"])
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if gpu else torch.float32}
    if cfg["method"] == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(cfg["model"], **kwargs)
    if gpu and cfg["method"] != "qlora":
        model = model.cuda()
    peft = None
    if cfg["method"] != "full":
        peft = LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    points: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if logs and "loss" in logs:
                points.append((time.time(), int(state.num_input_tokens_seen)))

    args = SFTConfig(
        output_dir=cfg["out"],
        num_train_epochs=1,
        per_device_train_batch_size=cfg["batch"],
        gradient_accumulation_steps=1,
        learning_rate=cfg["lr"],
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.01,
        max_length=cfg["max_length"],
        assistant_only_loss=True,
        gradient_checkpointing=True,
        bf16=gpu,
        use_cpu=not gpu,
        optim=cfg["optim"],
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=42,
        data_seed=42,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=2 if gpu else 0,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=peft,
        callbacks=[Clock()],
    )
    trainer.train()  # peak memory over the whole process, as the runner reports it
    peak = torch.cuda.max_memory_reserved() if gpu else None
    trainer.save_model(cfg["out"] + "/final")
    result = {
        "points": points,
        "steps": trainer.state.global_step,
        "tokens": int(trainer.state.num_input_tokens_seen),
        "peak_bytes": peak,
        "final": cfg["out"] + "/final",
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_baseline(case: Case, model_dir: Path, train: Path, work: Path, gpu: bool) -> dict:
    out = work / "baseline"
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(
        model=str(model_dir), method=case.method, train_file=str(train), out=str(out),
        batch=case.batch, lr=case.lr, max_length=case.max_len, optim=case.optim, cpu=not gpu,
    )  # fmt: skip
    (out / "config.json").write_text(json.dumps(cfg))
    log = open(out / "train.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--baseline-child", str(out / "config.json")],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    rss = PeakRss(proc.pid)
    stdout, _ = proc.communicate()
    log.close()
    peak_rss = rss.join()
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (out / "train.log").read_text()[-3000:]
        raise RuntimeError(f"baseline failed ({proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][7:])
    result["peak_bytes"] = result["peak_bytes"] or peak_rss
    return result


# --------------------------------------------------------------------------------------
# The tuitune arm: a session, its plan, tuitune replay
# --------------------------------------------------------------------------------------


def user_spec(case: Case, gpu: bool) -> TrainSpec:
    """The baseline script's settings as a TrainSpec (the speed levers at plain TRL's values)."""
    return TrainSpec(
        method=case.method,
        data_format="messages",
        learning_rate=case.lr,
        num_train_epochs=1.0,
        per_device_train_batch_size=case.batch,
        gradient_accumulation_steps=1,
        lr_scheduler_type="cosine",
        warmup_ratio=0.05,
        weight_decay=0.01,
        optim=case.optim,
        max_length=case.max_len,
        gradient_checkpointing=True,
        bf16=gpu,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        load_in_4bit=case.method == "qlora",
        logging_steps=1,
        save_steps=10**6,  # one save, after the last step (outside the timed steps)
        use_cpu=not gpu,
    )


# What the user sets in the session: the baseline's settings, minus the speed levers, which
# are the plan's (packing, attention, Liger, compile, checkpointing by need; the micro-batch
# then carries the same examples per step in packed rows).
SESSION_FIELDS = (
    "method", "learning_rate", "num_train_epochs", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "warmup_ratio", "weight_decay", "optim",
    "max_length", "bf16", "lora_r", "lora_alpha", "lora_dropout", "load_in_4bit",
    "logging_steps", "save_steps", "use_cpu", "seed",
)  # fmt: skip
LEVER_FIELDS = (
    "packing", "attn_implementation", "use_liger_kernel", "torch_compile",
    "gradient_checkpointing", "per_device_train_batch_size", "gradient_accumulation_steps",
)  # fmt: skip


def session_spec(case: Case, gpu: bool) -> dict[str, Any]:
    spec = user_spec(case, gpu).to_dict()
    return {"schema_version": 1, **{k: spec[k] for k in SESSION_FIELDS}}


def capped_hardware(device: Device, budget: int | None) -> Any:
    """The probe's ``HardwareInfo`` (or the GPU table's, for a planned device) with the GPU's
    free memory cut to ``budget`` plus the CUDA context the plan subtracts, so the plan sizes
    the run for the baseline's peak."""
    import dataclasses

    from tuitune.core.hardware import probe
    from tuitune.core.hardware.recommend import CUDA_CONTEXT_BYTES

    if device.name.startswith("planned "):
        from tuitune.core.hardware.gpu_table import hardware_for

        hw = hardware_for(device.name.removeprefix("planned "))
    else:
        hw = probe.probe()
    if budget and hw.gpus:
        free = min(hw.gpus[0].free_bytes, budget + CUDA_CONTEXT_BYTES)
        hw = dataclasses.replace(hw, gpus=(dataclasses.replace(hw.gpus[0], free_bytes=free),))
    return hw


def make_capped_plan(
    session_path: Path, device: Device, lengths: list[int], budget: int | None
) -> Any:
    from tuitune.core.session import load_session
    from tuitune.core.training.plan import make_plan

    hw = capped_hardware(device, budget)
    return make_plan(load_session(session_path), hardware=hw, data_stats=lengths)


def lever_rows(plan: Any) -> list[tuple[str, str, str]]:
    return [(c.field, str(c.value), f"[{c.source}] {c.reason}") for c in plan.choices]


def run_tuitune(
    case: Case,
    model_dir: Path,
    train: Path,
    lengths: list[int],
    work: Path,
    device: Device,
    budget: int | None,
) -> tuple[dict, list[tuple[str, str, str]], TrainSpec, str]:
    """One tuitune arm: the session, its plan capped at ``budget``, launched as replay does."""
    from tuitune.core.runs.follow import wait_run
    from tuitune.core.runs.rundir import new_run_dir
    from tuitune.core.session import load_session
    from tuitune.core.training.plan import launch_plan

    gpu = device.cuda
    work.mkdir(parents=True, exist_ok=True)
    path = write_session(
        work / "session.json", model=model_dir, train=[train], spec=session_spec(case, gpu),
        name=f"throughput {case.name}",
    )  # fmt: skip
    plan = make_capped_plan(path, device, lengths, budget)
    run = new_run_dir(work / "runs")
    launched = launch_plan(plan, load_session(path), run, force=True)
    rss = PeakRss(launched.pid)
    final = wait_run(run, poll=0.2)
    peak_rss = rss.join_when_done()
    if final.get("type") != "finished":
        raise RuntimeError(f"tuitune run failed: {final}\n{run.log.read_text()[-3000:]}")
    events = read_events(run.events)
    steps = [e for e in events if e["type"] == "step"]
    points = [(e["time"], int(e["tokens_seen"])) for e in steps]
    mem = [e.get("memory_gib") or 0 for e in steps]
    result = {
        "points": points,
        "steps": final["step"],
        "tokens": int(final.get("tokens_seen") or points[-1][1]),
        "peak_bytes": int(max(mem) * GiB) if gpu else peak_rss,
        "final": final.get("adapter_dir") or final.get("model_dir"),
    }
    source = f"plan ({plan.verdict}: {plan.memory_line()})"
    return result, lever_rows(plan), launched.spec, source


# --------------------------------------------------------------------------------------
# Eval loss, the same code for both arms
# --------------------------------------------------------------------------------------


def eval_loss(
    model_dir: Path, trained: str, method: str, eval_rows: list[dict], gpu: bool
) -> float:
    """Token-weighted mean loss over the assistant tokens of ``eval_rows``, one example at a
    time (no packing, no padding), with TRL's own label preparation."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuitune.core.data.training_view import trl_prepare

    tok = AutoTokenizer.from_pretrained(model_dir)
    prepared = trl_prepare(
        Dataset.from_list(eval_rows),
        tok,
        {"max_length": None, "assistant_only_loss": True, "dataset_text_field": "text"},
    )
    dtype = torch.bfloat16 if gpu else torch.float32
    device = "cuda" if gpu else "cpu"
    if method == "full":
        model = AutoModelForCausalLM.from_pretrained(trained, dtype=dtype)
    else:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        model = PeftModel.from_pretrained(base, trained)
    model = model.to(device).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in prepared:
            ids = torch.tensor([ex["input_ids"]], device=device)
            labels = torch.tensor(ex["labels"], device=device)
            logits = model(input_ids=ids).logits[0, :-1].float()
            target = labels[1:]
            mask = target != -100
            nll = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
            total += nll.item()
            count += int(mask.sum())
    del model
    if gpu:
        torch.cuda.empty_cache()
    return total / max(1, count)


# --------------------------------------------------------------------------------------
# One case: interleaved, repeated arms
# --------------------------------------------------------------------------------------


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def run_case(
    case: Case, work: Path, device: Device, cpu_peak: float | None, *, repeats: int | None = None
) -> dict:
    """Both arms ``repeats`` times, interleaved (B T, T B, ...), on the same data.

    The first repetition runs the baseline first: its measured peak caps tuitune's plan on a
    GPU for every repetition. Eval loss is computed once per arm (first repetition).
    """
    gpu = device.cuda
    repeats = max(1, repeats or case.repeats)
    work.mkdir(parents=True, exist_ok=True)
    model_dir = build_model(case, work / "model", gpu=gpu)
    rows, lengths = make_rows(case, case.examples, seed=1)
    eval_rows, _ = make_rows(case, case.eval_examples, seed=2)
    train = work / "train.jsonl"
    write_jsonl(train, rows)
    warm = 5 if gpu else 3

    print(f"\n== {case.name}: {case.arch} {case.method}, {case.examples} examples of "
          f"{case.min_len}-{case.max_len} tokens, baseline batch {case.batch}, "
          f"{repeats} interleaved repetitions", flush=True)  # fmt: skip
    runs: dict[str, list[dict]] = {"baseline": [], "tuitune": []}
    budget: int | None = None
    levers: list[tuple[str, str, str]] = []
    spec: TrainSpec | None = None
    source = ""
    for rep in range(repeats):
        order = ("baseline", "tuitune") if rep % 2 == 0 else ("tuitune", "baseline")
        for arm in order:
            t0 = time.monotonic()
            if arm == "baseline":
                res = run_baseline(case, model_dir, train, work / f"baseline-{rep}", gpu)
                if budget is None and gpu:
                    budget = int(res["peak_bytes"])
            else:
                res, levers, spec, source = run_tuitune(
                    case, model_dir, train, lengths, work / f"tuitune-{rep}", device, budget
                )
            rate, timed = steady_rate([tuple(p) for p in res["points"]], warm)
            res["rate"], res["timed"] = rate, timed
            runs[arm].append(res)
            print(f"   rep {rep + 1} {arm:9} {rate:11,.0f} real tok/s over {timed} steps "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)  # fmt: skip

    print(f"   levers ({source}):")
    for name, setting, reason in levers:
        print(f"     {name:24} {setting:24} {reason}")

    n_matmul = matmul_params(model_dir)
    peak_flops = cpu_peak if not gpu else gpu_peak_flops(device.name)
    out: dict[str, Any] = {"case": asdict(case), "device": asdict(device), "arms": {}}
    for arm, results in runs.items():
        med, lo, hi = _spread([r["rate"] for r in results])
        first = results[0]
        loss = (
            eval_loss(model_dir, first["final"], case.method, eval_rows, gpu) if case.eval else None
        )
        mfu = 6 * n_matmul * med / peak_flops if peak_flops else None
        out["arms"][arm] = dict(
            tokens_per_s=med,
            tokens_per_s_min=lo,
            tokens_per_s_max=hi,
            rates=[r["rate"] for r in results],
            timed_steps=first["timed"],
            steps=first["steps"],
            real_tokens=first["tokens"],
            tokens_per_step=first["tokens"] / max(1, first["steps"]),
            peak_bytes=max(int(r["peak_bytes"]) for r in results),
            mfu=mfu,
            eval_loss=loss,
        )
    b, t = out["arms"]["baseline"], out["arms"]["tuitune"]
    out["repeats"] = repeats
    out["speedup"] = t["tokens_per_s"] / b["tokens_per_s"]
    out["speedup_range"] = [
        min(t["rates"]) / max(b["rates"]),
        max(t["rates"]) / min(b["rates"]),
    ]
    out["memory_ratio"] = t["peak_bytes"] / b["peak_bytes"]
    if case.eval:
        out["eval_loss_rel"] = (t["eval_loss"] - b["eval_loss"]) / b["eval_loss"]
        out["quality_ok"] = out["eval_loss_rel"] <= QUALITY_BOUND
    else:  # not measured: neither a pass nor a failure
        out["eval_loss_rel"], out["quality_ok"] = None, True
    out["same_real_tokens"] = b["real_tokens"] == t["real_tokens"]
    out["levers"] = [list(r) for r in levers]
    out["lever_source"] = source
    out["spec"] = {k: getattr(spec, k) for k in LEVER_FIELDS} if spec else {}
    print_case(out, gpu)
    return out


def dry_check(case: Case, work: Path) -> dict[str, Any]:
    """Everything a GPU case builds, without a GPU: the data, the session and the plan capped
    at GPU.md's plain-TRL peak on an H100, for the real architecture (a config-only folder)."""
    work.mkdir(parents=True, exist_ok=True)
    model_dir = chat_data.config_only(arch_config(case.arch), work / "real-config")
    rows, lengths = make_rows(case, case.examples, seed=1)
    train = work / "train.jsonl"
    write_jsonl(train, rows)
    device = Device("cuda", "planned H100-80GB", 80 * GiB, 79 * GiB, (9, 0))
    budget = {"lora": int(2.54 * GiB), "qlora": int(9.69 * GiB)}.get(case.method, 20 * GiB)
    path = write_session(
        work / "session.json", model=model_dir, train=[train], spec=session_spec(case, True),
        name=f"throughput {case.name} (dry)",
    )  # fmt: skip
    plan = make_capped_plan(path, device, lengths, budget)
    picked = {k: getattr(plan.spec, k) for k in LEVER_FIELDS}
    print(f"speed {case.name} (dry, H100 capped at {budget / GiB:.2f} GiB): plan "
          f"{plan.verdict} -> {json.dumps(picked)}", flush=True)  # fmt: skip
    return {"case": case.name, "status": f"built only (dry run, plan {plan.verdict})",
            "spec": picked, "memory": plan.memory_line()}  # fmt: skip


def print_case(out: dict, gpu: bool) -> None:
    mem = "peak reserved" if gpu else "peak RSS"
    print(f"   {'arm':9} {'real tok/s':>11} {'min-max':>17} {'x':>6} {mem:>14} {'x':>6} "
          f"{'MFU':>7} {'steps':>6} {'tok/step':>9} {'real tok':>9} {'eval loss':>10}")  # fmt: skip
    base = out["arms"]["baseline"]
    for arm, a in out["arms"].items():
        mfu = f"{a['mfu']:.1%}" if a["mfu"] is not None else "n/a"
        spread = f"{a['tokens_per_s_min']:,.0f}-{a['tokens_per_s_max']:,.0f}"
        print(
            f"   {arm:9} {a['tokens_per_s']:11,.0f} {spread:>17} "
            f"{a['tokens_per_s'] / base['tokens_per_s']:6.2f} "
            f"{a['peak_bytes'] / GiB:10.2f} GiB {a['peak_bytes'] / base['peak_bytes']:6.2f} "
            f"{mfu:>7} {a['steps']:6d} {a['tokens_per_step']:9,.0f} {a['real_tokens']:9,d} "
            + (f"{a['eval_loss']:10.4f}" if a["eval_loss"] is not None else f"{'n/a':>10}")
        )
    verdict = "within" if out["quality_ok"] else "OUTSIDE"
    rel = out["eval_loss_rel"]
    quality = (
        f"eval loss {rel:+.2%} vs baseline ({verdict} the +{QUALITY_BOUND:.0%} bound)"
        if rel is not None
        else "eval loss not measured"
    )
    lo, hi = out["speedup_range"]
    print(
        f"   speed-up {out['speedup']:.2f}x (ratio of medians; {lo:.2f}-{hi:.2f}x worst to best "
        f"pair) at {out['memory_ratio']:.2f}x memory; {quality}; same real tokens: "
        f"{out['same_real_tokens']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="CPU mode: the tiny model cases")
    p.add_argument("--case", action="append", help="run only these cases (repeatable)")
    p.add_argument("--repeats", type=int, help="interleaved repetitions per case")
    p.add_argument("--examples", type=int, help="training examples per case (default: its own)")
    p.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--baseline-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.baseline_child:
        return baseline_child(args.baseline_child)

    names = args.case or [n for n, c in CASES.items() if c.cpu == args.cpu]
    cases = [CASES[n] for n in names]
    if args.examples:
        import dataclasses

        cases = [dataclasses.replace(c, examples=args.examples) for c in cases]
    if args.cpu or all(c.cpu for c in cases):
        device = cpu_device()
        cpu_peak = matmul_peak_cpu()
        print(f"CPU mode: {device.name}, fp32 matmul peak {cpu_peak / 1e9:.1f} GFLOP/s "
              f"(torch threads); nothing here says anything about GPUs", flush=True)  # fmt: skip
    else:
        device, cpu_peak = gpu_device(), None
        print(f"GPU: {device.name}, {device.total_bytes / GiB:.1f} GiB", flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="tuitune-throughput-"))
    t0 = time.monotonic()
    results = []
    for case in cases:
        results.append(run_case(case, work / case.name, device, cpu_peak, repeats=args.repeats))
    print(f"\nsummary ({time.monotonic() - t0:.0f} s)")
    print(f"  {'case':14} {'speed-up':>9} {'pairs':>13} {'memory':>7} {'eval loss':>10}")
    for r in results:
        lo, hi = r["speedup_range"]
        print(f"  {r['case']['name']:14} {r['speedup']:8.2f}x {lo:5.2f}-{hi:5.2f}x "
              f"{r['memory_ratio']:6.2f}x "
              + (f"{r['eval_loss_rel']:+9.2%}" if r["eval_loss_rel"] is not None else "      n/a"))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(r["quality_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
