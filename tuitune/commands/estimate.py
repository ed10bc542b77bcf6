"""``tuitune estimate MODEL``: peak GPU memory of a training setup, component by component."""

from __future__ import annotations

import argparse

NAME = "estimate"
HELP = "estimate peak GPU memory of training MODEL (from its config, no weights loaded)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default="default",
        help="model directory, Hugging Face id (cached) or catalog name (e.g. Qwen2.5-7B)",
    )
    p.add_argument(
        "--method",
        default="lora",
        help="full | lora | qlora | dpo (= dpo-lora) | dpo-full | dpo-qlora",
    )
    p.add_argument("--seq", type=int, default=1024, help="tokens per example (max_length)")
    p.add_argument("--batch", type=int, default=2, help="micro-batch per GPU")
    p.add_argument(
        "--grad-ckpt",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gradient checkpointing (default on)",
    )
    p.add_argument("--rank", type=int, default=16, help="LoRA rank")
    p.add_argument("--targets", default="all-linear", help="LoRA target modules, comma-separated")
    p.add_argument(
        "--optim",
        default=None,
        help="adamw_torch, adamw_torch_fused, adamw_8bit, paged_adamw_8bit, ... "
        "(default: fused AdamW, paged 8-bit for QLoRA)",
    )
    p.add_argument(
        "--attn", default="sdpa", help="sdpa | flash_attention_2 | flex_attention | eager"
    )
    p.add_argument("--dtype", default="bf16", help="bf16 | fp16 | fp32")
    p.add_argument("--gpus", type=int, default=1, help="number of GPUs (figures are per GPU)")
    p.add_argument("--fsdp", action="store_true", help="shard weights, grads and states (FSDP)")
    p.add_argument("--json", action="store_true", help="print one JSON object (bytes) for scripts")
    p.add_argument("--list", action="store_true", help="list the bundled model catalog and exit")


def run(args: argparse.Namespace) -> int:
    import json

    from tuitune.core.hardware.estimate import (
        ModelShape,
        TrainSetup,
        estimate,
        format_bytes,
        load_shape,
    )

    if args.list:
        from tuitune.core.models.catalog import CATALOG

        for m in CATALOG:
            billions = ModelShape.from_config(m.config, name=m.name).param_count() / 1e9
            print(f"{m.family:<20} {m.size:>5}  {m.hf_id:<45} {billions:6.2f}B")
        return 0
    method, objective = TrainSetup.parse_method(args.method)
    optim = args.optim or ("paged_adamw_8bit" if method == "qlora" else "adamw_torch_fused")
    setup = TrainSetup(
        method=method,
        objective=objective,
        seq_len=args.seq,
        micro_batch=args.batch,
        grad_ckpt=args.grad_ckpt,
        lora_r=args.rank,
        lora_targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        optim=optim,
        attn_impl=args.attn,
        dtype=args.dtype,
        num_gpus=args.gpus,
        fsdp=args.fsdp,
    )
    est = estimate(load_shape(args.model), setup)
    if args.json:
        print(json.dumps(est.to_dict()))
        return 0
    s = est.setup
    print(
        f"{est.model}: {s.label}, seq {s.seq_len} x batch {s.micro_batch}, "
        f"checkpointing {'on' if s.grad_ckpt else 'off'}, {s.optim}, {s.attn_impl}, {s.dtype}"
    )
    print(
        f"parameters {est.total_params / 1e6:,.1f}M, trainable {est.trainable_params / 1e6:,.2f}M"
    )
    print(f"peak during: {est.peak_phase}")
    width = max(map(len, est.components))
    for name, value in est.components.items():
        if value:
            print(f"  {name.replace('_', ' '):<{width}}  {format_bytes(value):>10}")
    print(f"  {'peak reserved (torch)':<{width}}  {format_bytes(est.peak_reserved):>10}")
    if est.outside_allocator:
        print(f"  {'paged optimizer states':<{width}}  {format_bytes(est.outside_allocator):>10}")
    print(f"  {'CUDA context':<{width}}  {format_bytes(est.cuda_context):>10}")
    print(f"  {'nvidia-smi used':<{width}}  {format_bytes(est.nvidia_smi_used):>10}")
    for note in est.notes:
        print(f"note: {note}")
    return 0
