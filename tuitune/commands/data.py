"""``tuitune data check FILE...``: the data pre-flight for scripts and CI.

Prints the detected format and why, the curation report, statistics, flags and masking
warnings; ``--json`` prints the same as one JSON object (and an error as
``{"error": ..., "path", "line", "fix"}``). Exit 0 when the data is usable, 1 with the
reasons when it is not, 2 when it cannot be read at all.

Formats: alpaca, sharegpt (also LLaMA-Factory's, with its dataset_info.json beside the file or
in the folder), OpenAI messages (tools, tool_calls, weight), prompt/completion, text (.txt:
one document per blank-line block, or per line), preference pairs, unpaired preference (KTO).
Other column names: --columns prompt=question,completion=answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

NAME = "data"
HELP = "check training data: format, curation, statistics and what gets trained"

_MARK = {"red": "✗", "amber": "!", "green": "✓"}


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="pre-flight check of data files", description=__doc__)
    c.add_argument("files", nargs="+", metavar="FILE", help="JSONL/JSON/CSV/Parquet or a folder")
    c.add_argument("--model", help="model for token lengths and masking (path, HF id, default)")
    c.add_argument(
        "--columns",
        metavar="NAME=COLUMN,...",
        help="map the file's columns to tuitune's names, e.g. prompt=question,completion=answer "
        "(names: prompt completion text messages conversations chosen rejected label system "
        "tools instruction input output history; turn tags: role_tag content_tag user_tag "
        "assistant_tag ...)",
    )
    c.add_argument(
        "--text-unit",
        choices=("auto", "paragraph", "line", "document"),
        default="auto",
        help=".txt files: one document per blank-line block (paragraph), per line, or the "
        "whole file (document); auto: paragraphs when the file has blank lines, else lines",
    )
    c.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
    )
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument(
        "--format",
        default="auto",
        help="force a format: alpaca, sharegpt, messages, prompt_completion, text, "
        "preference, unpaired_preference, input_output (default: detect)",
    )
    c.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad rows")
    c.add_argument("--max-length", type=int, default=1024, help="tokens per example")
    c.add_argument("--val-ratio", type=float, default=0.1, help="validation share (0-0.5)")
    c.add_argument("--seed", type=int, default=42)
    c.add_argument("--pii", choices=("redact", "drop", "off"), default="redact")
    c.add_argument("--no-near-dedup", action="store_true", help="skip MinHash near-duplicates")
    c.add_argument(
        "--keep-html",
        action="store_true",
        help="do not strip HTML (code in backticks, fenced blocks and code-like text is always kept)",
    )
    c.add_argument("--train-all-tokens", action="store_true", help="no completion-only loss")
    c.add_argument("--out", help="write the curated set and manifest into this folder")


def _quiet_libraries() -> None:
    """bitsandbytes logs "No module named 'kernels'" on some CPUs when it loads: harmless
    (tuitune never installs ``kernels``, which fetches from a hub) but it reads as an error."""
    import logging

    def drop(record: logging.LogRecord) -> bool:
        return "kernels" not in record.getMessage()

    for name in ("bitsandbytes.backends.cpu.ops", "bitsandbytes.backends.mps.ops"):
        logging.getLogger(name).addFilter(drop)


def run(args: argparse.Namespace) -> int:
    from tuitune.core.data.curation import CurationEmptyError
    from tuitune.core.errors import TuituneError

    _quiet_libraries()
    try:
        return _run(args)
    except CurationEmptyError as e:
        if args.json:
            print(json.dumps({**_error(e), "curation": e.report.to_dict()}, indent=2))
            return 2
        print("Curation report:", file=sys.stderr)
        for line in curation_lines(e.report):
            print(line, file=sys.stderr)
        raise
    except TuituneError as e:
        if args.json:
            print(json.dumps(_error(e), indent=2, ensure_ascii=False))
            return 2
        raise


def _error(e: Any) -> dict[str, Any]:
    return {"usable": False, "error": e.message, "path": e.path, "line": e.line, "fix": e.fix}


def curation_lines(report: Any) -> list[str]:
    """The curation report as plain lines (steps, counts, two examples each)."""
    lines = [f"Curation: {report.rows_in} -> {report.rows_out} rows"]
    for step in report.steps:
        lines.append(f"  {step.summary()}")
        for ex in step.examples[:2]:
            why = f" [{ex['reason']}]" if ex.get("reason") else ""
            after = f" -> {ex['after']!r}" if ex.get("after") else ""
            lines.append(f"      {ex['origin']}{why}: {ex['before']!r}{after}")
    return lines


def _run(args: argparse.Namespace) -> int:
    from tuitune.core.data.check import check_data

    model_dir = None
    if args.model:
        from tuitune.core.models.resolve import resolve_model

        model_dir = resolve_model(args.model).path
    progress = None if args.json else (lambda msg: print(f"… {msg}", file=sys.stderr))
    check = check_data(
        args.files,
        model_dir=model_dir,
        out_dir=args.out,
        fmt=args.format,
        on_bad_rows="skip" if args.skip_bad_rows else "stop",
        curation={
            "pii": args.pii,
            "dedup_near": not args.no_near_dedup,
            "strip_html": not args.keep_html,
        },
        max_length=args.max_length,
        val_ratio=args.val_ratio,
        seed=args.seed,
        completion_only_loss=not args.train_all_tokens,
        progress=progress,
        columns=args.columns,
        text_unit=args.text_unit,
    )
    if args.json:
        print(json.dumps(check.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print_check(check)
    return 0 if check.usable else 1


def print_check(check: Any) -> None:
    """Plain-text report (no colour codes: it is for logs and CI)."""
    p = check.prepared
    fmt = p.manifest["format"]
    print(
        f"Format: {fmt['source']} -> {fmt['data_format']} ({fmt['confidence']:.0%}): {fmt['reason']}"
    )
    load = p.manifest["loading"]
    print(f"Loaded: {load['rows']} rows from {len(load['files'])} file(s), {load['bad']} bad")
    for bad in load["bad_rows"][:5]:
        print(f"  bad  {bad}")
    for mapping in p.mappings:
        print(f"Columns: {mapping}")
    for kept in p.kept:
        print(f"Kept: {kept}")
    for line in curation_lines(p.report):
        print(line)
    split = p.manifest["split"]
    print(
        f"Split: {split['train_rows']} train / {split['eval_rows']} validation (seed {split['seed']})"
    )
    st = check.stats
    turns = ", ".join(f"{k}: {v}" for k, v in st.turns.items())
    print(f"Turns per example: {turns}")
    if st.token_histogram:
        print(
            f"Tokens: min {st.token_min}, median {st.token_median}, p95 {st.token_p95}, "
            f"max {st.token_max}"
        )
        peak = max(c for _, _, c in st.token_histogram) or 1
        for lo, hi, count in st.token_histogram:
            print(
                f"  {lo:>6}-{hi:<6} {'#' * max(1 if count else 0, round(30 * count / peak))} {count}"
            )
    for flag in st.flags:
        print(f"{_MARK[flag.level]} {flag.message}")
    for w in p.warnings:
        print(f"! {w}")
    if check.masking is not None:
        m = check.masking
        print(f"Masking: {m.plan.mode} (template: {m.template})")
        for note in m.plan.notes:
            print(f"  {note}")
        for w in m.warnings:
            print(f"{_MARK[w.level]} {w.message}")
        if m.previews:
            print("First example ([[trained]]):")
            text = "".join(f"[[{t}]]" if on else t for t, on in m.previews[0].spans)
            print("  " + text.replace("\n", "\n  "))
    for note in check.notes:
        print(f"note: {note}")
    if check.usable:
        print("Data is usable.")
    else:
        print("Data is NOT usable:")
        for reason in check.problems:
            print(f"  - {reason}")
