"""Benchmark: 100,000-row JSONL -> load, detect, curate, split, stats and label preview.

Prints wall time per phase and peak memory (RSS high-water mark of this process). Usage:

    python benchmarks/data_scale.py [--rows 100000] [--model default|DIR|none]

The data is generated here (seeded): chat rows with some HTML, e-mail addresses, exact and
near duplicates, so every curation step has work to do.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "data",
    "model",
    "answer",
    "question",
    "city",
    "name",
    "extract",
    "return",
    "field",
    "value",
    "json",
    "record",
    "person",
    "travel",
    "order",
    "invoice",
    "weather",
    "river",
    "mountain",
    "language",
    "number",
    "table",
    "color",
    "garden",
    "paper",
]


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        previous = None
        for i in range(rows):
            if previous is not None and i % 50 == 0:
                row = previous  # exact duplicate
            else:
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 60)))
                user = f"Request {i}: {words}"
                if i % 20 == 0:
                    user = f"<p>{user}</p>"
                answer = json.dumps({"id": i, "name": rng.choice(WORDS), "n": rng.randint(0, 999)})
                if i % 33 == 0:
                    answer += f" contact user{i}@example.com"
                row = {
                    "messages": [
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": answer},
                    ]
                }
            f.write(json.dumps(row) + "\n")
            previous = row


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--model", default="default", help="default, a model directory, or none")
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args()

    from tuitune.core.data.masking import check_masking
    from tuitune.core.data.prepare import load_tokenizer, prepare_data
    from tuitune.core.data.stats import compute_stats
    from tuitune.core.data.training_view import read_jsonl

    with tempfile.TemporaryDirectory(prefix="tuitune-bench-") as tmp:
        src = Path(tmp) / "big.jsonl"
        t = time.perf_counter()
        generate(src, args.rows)
        print(
            f"generated {args.rows} rows ({src.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s"
        )
        base_rss = peak_rss_mb()
        tokenizer = None
        if args.model != "none":
            from tuitune.core.models.resolve import resolve_model

            t = time.perf_counter()
            model_dir = resolve_model(args.model).path
            tokenizer = load_tokenizer(model_dir)
            print(f"tokenizer {model_dir.name}: {time.perf_counter() - t:.1f} s")
        phases: dict[str, float] = {}
        last = [time.perf_counter(), "start"]

        def progress(msg: str) -> None:
            now = time.perf_counter()
            phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
            last[:] = [now, msg]

        t0 = time.perf_counter()
        prepared = prepare_data(
            [src],
            Path(tmp) / "out",
            tokenizer=tokenizer,
            max_length=args.max_length if tokenizer is not None else None,
            progress=progress,
        )
        progress("stats")
        rows = read_jsonl(prepared.train_file)
        stats = compute_stats(
            rows,
            prepared.data_format,
            tokenizer=tokenizer,
            max_length=args.max_length,
            lengths=prepared.train_lengths,
        )
        progress("preview")
        preview = None
        if tokenizer is not None:
            preview = check_masking(
                rows, tokenizer, data_format=prepared.data_format, max_length=args.max_length
            )
        progress("end")
        total = time.perf_counter() - t0
        for name, secs in phases.items():
            if name != "start":
                print(f"  {name:<34} {secs:6.1f} s")
        print(f"curation: {prepared.report.rows_in} -> {prepared.report.rows_out} rows")
        for step in prepared.report.steps:
            print(f"  {step.summary()}")
        print(
            f"train {prepared.train_rows} / eval {prepared.eval_rows}; median tokens {stats.token_median}"
        )
        if preview is not None:
            print(
                f"preview: mode {preview.plan.mode}, warnings {[w.message for w in preview.warnings]}"
            )
        print(f"TOTAL load+curate+stats+preview: {total:.1f} s for {args.rows} rows")
        print(f"peak RSS: {peak_rss_mb():.0f} MB (before the pipeline: {base_rss:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
