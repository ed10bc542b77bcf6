"""VRAM estimate vs measurement: predicted and measured peak memory per configuration.

GPU mode (default): for each row of a >= 12-row grid (full, LoRA, QLoRA, DPO; 0.1B-8B
architectures with random weights; several lengths and batches; checkpointing on and off),
trains a few steps in a fresh process and prints predicted vs measured peak reserved
(``torch.cuda.max_memory_reserved``) and NVML used, the error in percent, then the worst and
mean absolute error. The peak counters are reset AFTER the model is built/loaded from disk.

This grid runs plain TRL in a child process (the calibration reference, as
../shared/bench/trl_baseline_grid.py did). The estimator held against tuitune's own runner,
through ``tuitune replay`` and the plan it launches, is ``benchmarks/gpu_proof.py --part
memory``.

CPU mode (``--cpu``): on tiny real models, checks exactly what does not depend on CUDA:
parameter counts, trainable (LoRA) parameters, bytes per state (weights, grads, AdamW states)
and the activation bytes autograd saves, against real models built with transformers + PEFT.

    python benchmarks/vram_accuracy.py            # on a GPU machine
    python benchmarks/vram_accuracy.py --cpu      # anywhere
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuitune.core.hardware.estimate import GiB, ModelShape, TrainSetup, estimate  # noqa: E402

ARCH = json.loads((ROOT / "benchmarks" / "gpu_reference_grid.json").read_text())["architectures"]
# id, arch, method, seq, batch, grad_ckpt, lora_r, targets
GRID = [
    ("v01", "SmolLM2-135M", "full", 512, 8, False, 0, None),
    ("v02", "SmolLM2-135M", "lora", 512, 8, True, 16, "all-linear"),
    ("v03", "Qwen2.5-0.5B", "lora", 2048, 4, True, 8, ["q_proj", "v_proj"]),
    ("v04", "Qwen2.5-0.5B", "lora", 1024, 8, False, 64, "all-linear"),
    ("v05", "Qwen2.5-1.5B", "full", 1024, 4, True, 0, None),
    ("v06", "Llama-3.2-1B", "lora", 2048, 8, True, 16, "all-linear"),
    ("v07", "Llama-3.2-1B", "full", 512, 8, False, 0, None),
    ("v08", "Llama-3.2-3B", "lora", 1024, 4, True, 16, "all-linear"),
    ("v09", "Qwen2.5-0.5B", "dpo-lora", 1024, 4, True, 16, "all-linear"),
    ("v10", "Qwen2.5-1.5B", "qlora", 2048, 4, True, 16, "all-linear"),
    ("v11", "Qwen2.5-3B", "qlora", 4096, 2, True, 32, "all-linear"),
    ("v12", "Mistral-7B-v0.3", "lora", 1024, 2, True, 16, "all-linear"),
    ("v13", "Mistral-7B-v0.3", "qlora", 2048, 4, True, 16, "all-linear"),
    ("v14", "Llama-3.1-8B", "qlora", 1024, 4, True, 16, "all-linear"),
    ("v15", "Llama-3.1-8B", "lora", 2048, 2, True, 16, "all-linear"),
    ("v16", "Qwen2.5-0.5B", "dpo-lora", 512, 8, False, 16, "all-linear"),
]


def setup_for(method: str, seq: int, bs: int, gc: bool, r: int, targets) -> TrainSetup:
    m, objective = TrainSetup.parse_method(method)
    return TrainSetup(
        method=m,
        objective=objective,
        seq_len=seq,
        micro_batch=bs,
        grad_ckpt=gc,
        lora_r=r or 16,
        lora_targets=tuple([targets] if isinstance(targets, str) else targets or ["all-linear"]),
        optim="paged_adamw_8bit" if m == "qlora" else "adamw_torch_fused",
        plain_trl=True,  # the child runs plain TRL on a bf16 model (no fp32 master weights)
    )


CHILD = r"""
import json, os, sys, gc, torch, pynvml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast, BitsAndBytesConfig
from datasets import Dataset
from peft import LoraConfig
arch, method, seq, bs, gc_on, r, targets, path = json.loads(sys.argv[1])
pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(0)
V = arch["vocab_size"]
if not os.path.exists(path):  # build the random bf16 model once, in its own process
    with torch.device("cuda"):
        m = AutoModelForCausalLM.from_config(AutoConfig.for_model(**arch), dtype=torch.bfloat16)
    m.save_pretrained(path); print("SAVED"); sys.exit(0)
q = None
if method.endswith("qlora"):
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q, dtype=torch.bfloat16, device_map={"": 0})
tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(V)}, unk_token="t0")); tok.pre_tokenizer = pre_tokenizers.Whitespace()
tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t1", eos_token="t2", unk_token="t0")
from trl import SFTConfig, SFTTrainer, DPOConfig, DPOTrainer
g = torch.Generator().manual_seed(0); n = bs * 8
peft = None if method in ("full", "dpo-full") else LoraConfig(r=r, lora_alpha=2*r, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM")
common = dict(output_dir="/tmp/vram_out", max_steps=6, per_device_train_batch_size=bs, learning_rate=2e-4, bf16=True, logging_steps=2, report_to="none", save_strategy="no", gradient_checkpointing=gc_on, optim="paged_adamw_8bit" if method.endswith("qlora") else "adamw_torch_fused", disable_tqdm=True)
torch.cuda.synchronize(); gc.collect(); torch.cuda.reset_peak_memory_stats()
if method.startswith("dpo"):
    half = seq // 2
    txt = lambda k: [" ".join(f"t{int(i)}" for i in torch.randint(3, V, (k,), generator=g)) for _ in range(n)]
    tr = DPOTrainer(model=model, args=DPOConfig(max_length=seq, **common), train_dataset=Dataset.from_dict({"prompt": txt(half), "chosen": txt(half), "rejected": txt(half)}), processing_class=tok, peft_config=peft)
else:
    tr = SFTTrainer(model=model, args=SFTConfig(max_length=seq, **common), train_dataset=Dataset.from_dict({"input_ids": torch.randint(3, V, (n, seq), generator=g).tolist()}), processing_class=tok, peft_config=peft)
tr.train(); torch.cuda.synchronize()
print("RESULT " + json.dumps(dict(peak_alloc=torch.cuda.max_memory_allocated(), peak_reserved=torch.cuda.max_memory_reserved(), nvml_used=pynvml.nvmlDeviceGetMemoryInfo(h).used)))
"""


def gpu(rows: list[str]) -> int:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rid, arch, method, seq, bs, gc_on, r, targets in GRID:
            if rows and rid not in rows:
                continue
            path = os.path.join(tmp, arch)
            payload = [ARCH[arch], method, seq, bs, gc_on, r or 16, targets, path]
            for _ in range(2):  # first call builds the random model when missing
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, json.dumps(payload)],
                    capture_output=True,
                    text=True,
                )
                if "SAVED" not in out.stdout:
                    break
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            est = estimate(
                ModelShape.from_config(ARCH[arch], name=arch),
                setup_for(method, seq, bs, gc_on, r, targets),
            )
            if line is None:
                print(f"{rid} FAILED: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            m = json.loads(line[7:])
            err = (est.peak_reserved - m["peak_reserved"]) / m["peak_reserved"] * 100
            err_nvml = (est.nvidia_smi_used - m["nvml_used"]) / m["nvml_used"] * 100
            results.append((rid, abs(err)))
            print(
                f"{rid} {arch:16} {method:9} seq {seq:5} bs {bs} gc {int(gc_on)} | reserved pred "
                f"{est.peak_reserved / GiB:6.2f} meas {m['peak_reserved'] / GiB:6.2f} ({err:+5.1f}%) | "
                f"nvml pred {est.nvidia_smi_used / GiB:6.2f} meas {m['nvml_used'] / GiB:6.2f} ({err_nvml:+5.1f}%)",
                flush=True,
            )
    if results:
        worst = max(results, key=lambda x: x[1])
        print(
            f"worst {worst[1]:.1f}% ({worst[0]}), mean abs {sum(e for _, e in results) / len(results):.1f}%"
        )
    return 0 if results and all(e <= 10 for _, e in results) else 1


def cpu() -> int:
    """Exact checks of the CUDA-independent parts on tiny real models."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from tuitune.core.hardware.estimate import _optimizer_bytes, _trainable_tensor_sizes

    tiny = {
        "llama": dict(
            model_type="llama",
            hidden_size=64,
            intermediate_size=176,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=320,
            tie_word_embeddings=True,
        ),
        "qwen2": dict(
            model_type="qwen2",
            hidden_size=64,
            intermediate_size=160,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=300,
        ),
        "mistral": dict(
            model_type="mistral",
            hidden_size=96,
            intermediate_size=200,
            num_hidden_layers=2,
            num_attention_heads=6,
            num_key_value_heads=2,
            vocab_size=256,
        ),
        "gemma2": dict(
            model_type="gemma2",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=32,
            vocab_size=256,
        ),
        "phi3": dict(
            model_type="phi3",
            hidden_size=96,
            intermediate_size=192,
            num_hidden_layers=2,
            num_attention_heads=6,
            num_key_value_heads=3,
            vocab_size=32064,
        ),
    }
    bad = 0
    print(f"{'arch':8} {'check':34} {'predicted':>12} {'real':>12}")
    for name, cfg in tiny.items():
        shape = ModelShape.from_config(cfg, name=name)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), dtype=torch.bfloat16)
        checks = [("parameters", shape.param_count(), sum(p.numel() for p in model.parameters()))]
        checks.append(
            (
                "bf16 weight bytes",
                estimate(shape, TrainSetup(method="full", plain_trl=True)).components["weights"],
                sum(p.numel() * p.element_size() for p in model.parameters()),
            )
        )
        peft_model = get_peft_model(
            model,
            LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
        )
        trainable = [p for p in peft_model.parameters() if p.requires_grad]
        checks.append(
            (
                "LoRA r8 trainable params",
                shape.lora_params(8, "all-linear"),
                sum(p.numel() for p in trainable),
            )
        )
        setup = TrainSetup(method="lora", lora_r=8)
        checks.append(
            (
                "LoRA params bytes (fp32 upcast)",
                estimate(shape, setup).components["trainable_params"],
                sum(p.numel() * p.element_size() for p in trainable),
            )
        )
        opt = torch.optim.AdamW(trainable, lr=1e-3)
        x = torch.randint(0, cfg["vocab_size"], (1, 8))
        peft_model(input_ids=x, labels=x).loss.backward()
        opt.step()
        state = sum(
            t.numel() * t.element_size()
            for s in opt.state.values()
            for k, t in s.items()
            if k != "step"
        )
        sizes = _trainable_tensor_sizes(shape, setup)
        checks.append(
            ("AdamW state bytes", _optimizer_bytes(sum(sizes), sizes, 4, "adamw_torch")[0], state)
        )
        checks.append(
            (
                "gradient bytes",
                estimate(shape, setup).components["trainable_params"],
                sum(p.grad.numel() * p.grad.element_size() for p in trainable),
            )
        )
        for label, pred, real in checks:
            ok = pred == real
            bad += not ok
            print(f"{name:8} {label:34} {pred:>12,} {real:>12,} {'ok' if ok else 'MISMATCH'}")
    print("all exact" if not bad else f"{bad} mismatches")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cpu", action="store_true", help="exact CUDA-independent checks on tiny models"
    )
    p.add_argument("rows", nargs="*", help="only these row ids (GPU mode)")
    args = p.parse_args()
    return cpu() if args.cpu else gpu(args.rows)


if __name__ == "__main__":
    sys.exit(main())
