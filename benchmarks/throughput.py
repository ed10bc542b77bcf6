"""Throughput: tuitune's recipe against the plain TRL script, side by side in one run.

For each case both arms train the same architecture (random weights from the published
config), on the same variable-length chat data, for one epoch (so both see exactly the same
real tokens), with the same max length, loss (assistant tokens only), optimizer, learning
rate schedule and seed, and about the same real tokens per optimizer step:

- baseline: what a user writes with plain TRL, as ../shared/bench/trl_baseline_grid.py did for
  ../shared/GPU.md: ``SFTTrainer`` defaults (batches padded to their longest example,
  gradient checkpointing on), bf16 on a GPU, LoRA r16 / alpha 32 on all linear layers;
- tuitune: ``choose_recipe`` on this machine and this data, applied to the spec, trained by
  tuitune's runner (``python -m tuitune.runner SPEC.json`` launched by
  ``tuitune.core.runs.start_run``). On a GPU the recipe is capped at the baseline's measured
  peak memory, as the speed issue asks (no more memory than the baseline).

Printed per case and arm: real (non-padding) tokens/s over the steps after warm-up, peak
memory (``torch.cuda.max_memory_reserved`` on a GPU; peak RSS, ``VmHWM``, on a CPU), both
ratios, model FLOPs utilisation (6 x N x tokens/s over the device peak, N = parameters in
matmuls; on a CPU against a measured fp32 matmul peak; 6N overstates LoRA, which computes no
weight gradients for frozen layers) and the eval loss after the epoch (token-weighted over the
assistant tokens of a held-out set, unpacked, computed by the same code for both arms).

    python benchmarks/throughput.py --cpu            # tiny Llama, LoRA and full SFT
    python benchmarks/throughput.py                  # GPU: the three cases of the speed issue
    python benchmarks/throughput.py --case qwen05-lora --json results.json

Nothing about GPUs is claimed from a CPU run: it checks that the levers are applied and the
comparison machinery works.

On the lent GPU (../shared/GPU.md): carry wheels for trl, datasets, bitsandbytes, dill,
multiprocess and liger-kernel (the Liger lever is on only where it imports), install them into
/tmp/site as GPU.md shows, then ``PYTHONPATH=/tmp/site:$PWD python benchmarks/throughput.py
--json $OUT/throughput.json`` (about 5 minutes per case; the 7B case writes 15 GB of random
weights to the work directory first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuitune.core.recipe import Device, choose_recipe  # noqa: E402
from tuitune.core.spec import TrainSpec  # noqa: E402

GiB = 2**30
# Eval loss of tuitune's arm may exceed the baseline's by at most this fraction.
QUALITY_BOUND = 0.03

ARCH = {
    "Qwen2.5-0.5B": dict(
        model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "Llama-3.2-1B": dict(
        model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "Qwen2.5-7B": dict(
        model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
        tie_word_embeddings=False,
    ),
    "tiny-llama": dict(
        model_type="llama", hidden_size=128, intermediate_size=344, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=2048, tie_word_embeddings=True,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    arch: str
    method: str  # lora | full | qlora
    batch: int  # the baseline's examples per optimizer step (micro-batch, no accumulation)
    min_len: int
    max_len: int  # also max_length
    examples: int
    eval_examples: int
    lr: float
    optim: str
    cpu: bool = False


CASES = {
    c.name: c
    for c in [
        Case("qwen05-lora", "Qwen2.5-0.5B", "lora", 8, 64, 1024, 320, 64, 2e-4, "adamw_torch_fused"),
        Case("llama1b-full", "Llama-3.2-1B", "full", 8, 64, 1024, 320, 64, 1e-5, "adamw_torch_fused"),
        Case("qwen7b-qlora", "Qwen2.5-7B", "qlora", 4, 64, 1024, 160, 32, 2e-4, "paged_adamw_8bit"),
        Case("tiny-lora", "tiny-llama", "lora", 8, 16, 128, 160, 32, 2e-3, "adamw_torch", cpu=True),
        Case("tiny-full", "tiny-llama", "full", 8, 16, 128, 160, 32, 1e-3, "adamw_torch", cpu=True),
    ]
}  # fmt: skip

# Dense bf16 tensor-core peaks (FLOP/s) by device name fragment.
GPU_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


# --------------------------------------------------------------------------------------
# Model and data
# --------------------------------------------------------------------------------------

SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>", "<unk>"]
ROLES = ["system", "user", "assistant"]
TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{{ '<|im_start|> assistant ' }}{% generation %}{{ m['content'] + ' <|im_end|>' }}"
    "{% endgeneration %}{{ ' ' }}"
    "{% else %}{{ '<|im_start|> ' + m['role'] + ' ' + m['content'] + ' <|im_end|> ' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|> assistant ' }}{% endif %}"
)
# Tokens the template adds around a user + assistant exchange.
TEMPLATE_TOKENS = 6


def build_model(case: Case, directory: Path, *, gpu: bool) -> Path:
    """Random weights from the architecture's config, and a word-level tokenizer whose
    every word is one token (so example lengths are exact), saved like a hub model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    if (directory / "config.json").exists():
        return directory
    cfg = dict(ARCH[case.arch])
    vocab = cfg["vocab_size"]
    words = SPECIALS + ROLES + [f"t{i}" for i in range(vocab - len(SPECIALS) - len(ROLES))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=case.max_len,
    )
    fast.chat_template = TEMPLATE
    config = AutoConfig.for_model(
        **cfg,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=None,
        max_position_embeddings=max(4096, case.max_len),
    )
    torch.manual_seed(0)
    dtype = torch.bfloat16 if gpu else torch.float32
    device = "cuda" if gpu else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    del model
    if gpu:
        torch.cuda.empty_cache()
    return directory


def make_rows(case: Case, n: int, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Chat examples whose rendered length is uniform in [min_len, max_len] tokens.

    The task is learnable, so eval loss means something: the answer is the prompt's words
    mapped through a fixed permutation, in order (words drawn Zipf-like from 2,000 ids).
    """
    rng = random.Random(seed)
    words = min(2000, ARCH[case.arch]["vocab_size"] - 16)
    perm = list(range(words))
    random.Random(1234).shuffle(perm)
    weights = [1.0 / (k + 1) ** 1.1 for k in range(words)]
    rows, lengths = [], []
    for _ in range(n):
        total = rng.randint(case.min_len, case.max_len)
        body = total - TEMPLATE_TOKENS
        q = max(1, body // 2)
        a = max(1, body - q)
        prompt = rng.choices(range(words), weights=weights, k=q)
        answer = [perm[prompt[i % q]] for i in range(a)]
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": " ".join(f"t{w}" for w in prompt)},
                    {"role": "assistant", "content": " ".join(f"t{w}" for w in answer)},
                ]
            }
        )
        lengths.append(q + a + TEMPLATE_TOKENS)
    return rows, lengths


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


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
    from tuitune.core import estimate

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
    from tuitune.core.recipe import env_device

    return env_device()


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
# The tuitune arm: the recipe and the runner
# --------------------------------------------------------------------------------------


def run_tuitune(
    case: Case,
    model_dir: Path,
    train: Path,
    lengths: list[int],
    work: Path,
    device: Device,
    budget: int | None,
) -> tuple[dict, Any, TrainSpec]:
    from tuitune.core.events import read_events
    from tuitune.core.rundir import RunDir
    from tuitune.core.runs import start_run, wait_run

    gpu = device.cuda
    spec = TrainSpec(
        model=str(model_dir),
        method=case.method,
        train_file=str(train),
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
    recipe = choose_recipe(spec, device, lengths, memory_budget=budget)
    spec = recipe.apply(spec)
    run = RunDir(work / "tuitune")
    pid = start_run(spec, run)
    rss = PeakRss(pid)
    final = wait_run(run, poll=0.2)
    peak_rss = rss.join()
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
    return result, recipe, spec


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
# One case
# --------------------------------------------------------------------------------------


def run_case(case: Case, work: Path, device: Device, cpu_peak: float | None) -> dict:
    gpu = device.cuda
    work.mkdir(parents=True, exist_ok=True)
    model_dir = build_model(case, work / "model", gpu=gpu)
    rows, lengths = make_rows(case, case.examples, seed=1)
    eval_rows, _ = make_rows(case, case.eval_examples, seed=2)
    train = work / "train.jsonl"
    write_jsonl(train, rows)
    warm = 5 if gpu else 3

    print(f"\n== {case.name}: {case.arch} {case.method}, {case.examples} examples of "
          f"{case.min_len}-{case.max_len} tokens, baseline batch {case.batch}", flush=True)  # fmt: skip
    base = run_baseline(case, model_dir, train, work, gpu)
    budget = int(base["peak_bytes"]) if gpu else None
    tuned, recipe, spec = run_tuitune(case, model_dir, train, lengths, work, device, budget)

    print("   recipe levers:")
    for name, setting, reason in recipe.rows():
        print(f"     {name:24} {setting:24} {reason}")
    for note in recipe.notes:
        print(f"     note: {note}")

    n_matmul = matmul_params(model_dir)
    peak_flops = cpu_peak if not gpu else next(
        (v for k, v in GPU_PEAK.items() if k in device.name), None
    )  # fmt: skip
    out: dict[str, Any] = {"case": asdict(case), "device": asdict(device), "arms": {}}
    for arm, res in (("baseline", base), ("tuitune", tuned)):
        rate, timed = steady_rate([tuple(p) for p in res["points"]], warm)
        loss = eval_loss(model_dir, res["final"], case.method, eval_rows, gpu)
        mfu = 6 * n_matmul * rate / peak_flops if peak_flops else None
        out["arms"][arm] = dict(
            tokens_per_s=rate,
            timed_steps=timed,
            steps=res["steps"],
            real_tokens=res["tokens"],
            tokens_per_step=res["tokens"] / max(1, res["steps"]),
            peak_bytes=res["peak_bytes"],
            mfu=mfu,
            eval_loss=loss,
        )
    b, t = out["arms"]["baseline"], out["arms"]["tuitune"]
    out["speedup"] = t["tokens_per_s"] / b["tokens_per_s"]
    out["memory_ratio"] = t["peak_bytes"] / b["peak_bytes"]
    out["eval_loss_rel"] = (t["eval_loss"] - b["eval_loss"]) / b["eval_loss"]
    out["quality_ok"] = out["eval_loss_rel"] <= QUALITY_BOUND
    out["same_real_tokens"] = b["real_tokens"] == t["real_tokens"]
    out["levers"] = recipe.to_dict()
    out["spec"] = {k: getattr(spec, k) for k in recipe.spec_overrides}
    print_case(out, gpu)
    return out


def print_case(out: dict, gpu: bool) -> None:
    mem = "peak reserved" if gpu else "peak RSS"
    print(f"   {'arm':9} {'real tok/s':>11} {'x':>6} {mem:>14} {'x':>6} {'MFU':>7} "
          f"{'steps':>6} {'tok/step':>9} {'real tok':>9} {'eval loss':>10}")  # fmt: skip
    for arm, a in out["arms"].items():
        base = out["arms"]["baseline"]
        mfu = f"{a['mfu']:.1%}" if a["mfu"] is not None else "n/a"
        print(
            f"   {arm:9} {a['tokens_per_s']:11,.0f} {a['tokens_per_s'] / base['tokens_per_s']:6.2f} "
            f"{a['peak_bytes'] / GiB:10.2f} GiB {a['peak_bytes'] / base['peak_bytes']:6.2f} "
            f"{mfu:>7} {a['steps']:6d} {a['tokens_per_step']:9,.0f} {a['real_tokens']:9,d} "
            f"{a['eval_loss']:10.4f}"
        )
    verdict = "within" if out["quality_ok"] else "OUTSIDE"
    print(
        f"   speed-up {out['speedup']:.2f}x at {out['memory_ratio']:.2f}x memory; eval loss "
        f"{out['eval_loss_rel']:+.2%} vs baseline ({verdict} the +{QUALITY_BOUND:.0%} bound); "
        f"same real tokens: {out['same_real_tokens']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="CPU mode: the tiny model cases")
    p.add_argument("--case", action="append", help="run only these cases (repeatable)")
    p.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--baseline-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.baseline_child:
        return baseline_child(args.baseline_child)

    names = args.case or [n for n, c in CASES.items() if c.cpu == args.cpu]
    cases = [CASES[n] for n in names]
    if args.cpu or all(c.cpu for c in cases):
        device = cpu_device()
        cpu_peak = matmul_peak_cpu()
        print(f"CPU mode: {device.name}, fp32 matmul peak {cpu_peak / 1e9:.1f} GFLOP/s "
              f"(torch threads); nothing here says anything about GPUs", flush=True)  # fmt: skip
    else:
        device, cpu_peak = gpu_device(), None
        print(f"GPU: {device.name}, {device.total_bytes / GiB:.1f} GiB", flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="tuitune-throughput-"))
    results = []
    for case in cases:
        results.append(run_case(case, work / case.name, device, cpu_peak))
    print("\nsummary")
    print(f"  {'case':14} {'speed-up':>9} {'memory':>7} {'eval loss':>10}")
    for r in results:
        print(f"  {r['case']['name']:14} {r['speedup']:8.2f}x {r['memory_ratio']:6.2f}x "
              f"{r['eval_loss_rel']:+9.2%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(r["quality_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
