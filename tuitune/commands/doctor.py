"""``tuitune doctor``: this machine's GPUs, libraries and what it can train."""

from __future__ import annotations

import argparse

NAME = "doctor"
HELP = "show GPUs, installed libraries and which models this machine can train"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seq", type=int, default=1024, help="sequence length for the what-fits table")
    p.add_argument("--family", default=None, help="only this model family in the table")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import json

    from tuitune.core.hardware.probe import GiB, library_versions, probe
    from tuitune.core.hardware.recommend import device_capacity, what_fits
    from tuitune.core.hardware.torch_device import torch_build, torch_gpu_problem_runtime

    hw = probe()
    versions = library_versions()
    build = torch_build()
    # torch against the GPUs NVML sees (CPU build, driver mismatch, hidden GPUs); the runtime
    # part imports torch in a subprocess, only where there is a GPU to check
    torch_problem = torch_gpu_problem_runtime(hw)
    rows = what_fits(hw, seq_len=args.seq, family=args.family)
    if args.json:
        print(
            json.dumps(
                {
                    "hardware": hw.to_dict(),
                    "libraries": versions,
                    "torch": {
                        "version": build.version,
                        "cuda": build.cuda,
                        "problem": torch_problem,
                    },
                    "what_fits": [r.__dict__ for r in rows],
                }
            )
        )
        return 0
    print(
        f"machine   {hw.platform}, {hw.cpu_count} CPU cores, "
        f"{hw.ram_total_bytes / GiB:.1f} GiB RAM ({hw.ram_available_bytes / GiB:.1f} free)"
    )
    if hw.gpus:
        print(f"driver    {hw.driver_version} (CUDA {hw.cuda_driver_version or '?'})")
        for g in hw.gpus:
            cc = ".".join(map(str, g.compute_capability))
            print(
                f"gpu {g.index}     {g.name}: {g.total_bytes / GiB:.1f} GiB, {g.free_bytes / GiB:.1f} free, "
                f"cc {cc} ({g.arch}), bf16 {'yes' if g.bf16 else 'no'}, "
                f"flash-attention {'yes' if g.flash_attention else 'no'}"
            )
            for p in g.processes:
                print(f"          process {p.pid} holds {p.used_bytes / GiB:.1f} GiB")
    elif hw.mps:
        print("gpu       Apple MPS (unified memory)")
    else:
        print(
            f"gpu       none ({hw.nvml_error or 'no NVIDIA driver'}): training runs on the CPU, slowly"
        )
    for note in hw.notes:
        print(f"note      {note}")
    if build.installed:
        cuda = f"CUDA {build.cuda}" if build.cuda else "CPU-only build"
        print(f"torch     {build.version} ({cuda})" + ("" if torch_problem else ", ok"))
    if torch_problem:
        print(f"problem   {torch_problem}")
    print("libraries " + ", ".join(f"{k} {v or '-'}" for k, v in versions.items()))
    where = "per GPU" if hw.gpus else "in RAM"
    print(
        f"\nwhat fits ({device_capacity(hw) / GiB:.1f} GiB usable {where}; seq {args.seq}, batch 1, "
        "checkpointing on; fits = with 10% margin)"
    )
    methods = ("full", "lora", "qlora")
    print(f"  {'model':<40}" + "".join(f"{m:>16}" for m in methods))
    by_model: dict[str, dict[str, str]] = {}
    for r in rows:
        cell = f"{r.bytes_needed / GiB:.1f}G {r.verdict}" if r.bytes_needed else r.verdict
        by_model.setdefault(r.model, {})[r.method] = cell
    for model, cells in by_model.items():
        print(f"  {model:<40}" + "".join(f"{cells.get(m, ''):>16}" for m in methods))
    return 0
