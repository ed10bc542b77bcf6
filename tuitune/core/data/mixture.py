"""Forgetting mitigation by data mixture: mix a share of general chat rows into training.

A narrow fine-tune drifts away from what the base model could do (catastrophic forgetting);
replaying general instruction data during training is the usual remedy. The option lives in
the session's curation dict, ``curation["mix_general"] = {"share": 0.2, "file": ""}``:
``share`` is the fraction of the *final* training set that is general data, and ``file`` is
the user's own JSONL (any supported chat format) or empty for the bundled
``assets/general/mix.jsonl`` (hand-written, disjoint from the forgetting check's questions).
Only the training split is mixed: validation stays task data, so eval loss still measures
the task. The manifest records what was mixed (file, SHA-256, rows, achieved share).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.data.curation import curate
from tuitune.core.data.reading import read_and_convert, sha256
from tuitune.core.errors import TuituneError

MAX_SHARE = 0.9
BUNDLED_NAME = "mix.jsonl"


@dataclass(frozen=True)
class MixOption:
    """A validated ``mix_general`` option."""

    share: float
    file: Path
    bundled: bool


def bundled_mix_file() -> Path:
    return paths.assets_dir() / "general" / BUNDLED_NAME


def parse_mix_option(value: Any) -> MixOption | None:
    """``None`` when off; a one-line error for a bad share or a missing file.

    Accepts ``{"share": 0.2, "file": "..."}``, or a bare number as the share.
    """
    if value in (None, False, 0, {}):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"share": value}
    if not isinstance(value, dict):
        raise TuituneError(
            "curation option 'mix_general' must be an object",
            fix='use {"share": 0.2, "file": ""} (empty file = the bundled general set)',
        )
    unknown = sorted(set(value) - {"share", "file"})
    if unknown:
        raise TuituneError(f"unknown mix_general key {unknown[0]!r}", fix="use share and file")
    share = value.get("share", 0.2)
    if not isinstance(share, (int, float)) or isinstance(share, bool):
        raise TuituneError("mix_general share must be a number", fix="e.g. 0.2 for 20%")
    if share == 0:
        return None
    if not 0 < share <= MAX_SHARE:
        raise TuituneError(
            f"mix_general share {share} is out of range",
            fix=f"use a share above 0 and at most {MAX_SHARE} (0.1-0.3 is usual)",
        )
    raw = value.get("file") or ""
    path = Path(raw).expanduser() if raw else bundled_mix_file()
    if not path.is_file():
        raise TuituneError(
            "general data file for mixing does not exist",
            path=path,
            fix="give an existing JSONL of chat rows, or leave file empty for the bundled set",
        )
    return MixOption(float(share), path, bundled=not raw)


def rows_to_add(task_rows: int, share: float) -> int:
    """How many general rows make them ``share`` of the mixed set (at least one)."""
    return max(1, round(task_rows * share / (1.0 - share)))


def mix_general(
    train_rows: list[dict[str, Any]],
    option: MixOption,
    *,
    target_format: str,
    seed: int,
    curation: dict[str, Any] | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
    exclude: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The training rows with general rows mixed in (seeded shuffle), and a manifest entry.

    General rows go through the same conversion and curation as the user's data; rows equal
    to a task row or to one in ``exclude`` (the validation split) are dropped. When the file
    has fewer rows than needed, rows repeat (the entry says so).
    """
    if target_format not in ("messages", "prompt_completion"):
        raise TuituneError(
            f"mixing general data needs chat training data, this data is {target_format}",
            fix="turn mix_general off, or train on messages / prompt-completion rows",
        )
    plain = train_rows and isinstance(train_rows[0].get("prompt"), str)
    if target_format == "prompt_completion" and plain:
        raise TuituneError(
            "general chat rows cannot be mixed into plain-text prompt/completion data",
            fix="use conversational rows (messages), or turn mix_general off",
        )
    items, guess, _ = read_and_convert([option.file], on_bad_rows="skip")
    if guess.target != "messages":
        raise TuituneError(
            f"general data for mixing must be chat rows, this file is {guess.name}",
            path=option.file,
            fix="use {'messages': [...]} rows with an assistant answer",
        )
    cfg = {k: v for k, v in (curation or {}).items() if k != "mix_general"}
    items, _report = curate(items, "messages", cfg, tokenizer=tokenizer, max_length=max_length)
    taken = {json.dumps(r, sort_keys=True) for r in [*train_rows, *exclude]}
    pool = []
    for it in items:
        row = it.row
        msgs = row.get("messages") or []
        if not msgs or msgs[-1].get("role") != "assistant":
            continue
        if target_format == "prompt_completion":
            row = {"prompt": msgs[:-1], "completion": [msgs[-1]]}
        if json.dumps(row, sort_keys=True) not in taken:
            pool.append(row)
    if not pool:
        raise TuituneError(
            "no usable general rows to mix in (each needs a final assistant answer)",
            path=option.file,
        )
    want = rows_to_add(len(train_rows), option.share)
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    picked = [pool[order[i % len(pool)]] for i in range(want)]
    mixed = list(train_rows) + picked
    rng.shuffle(mixed)
    entry = {
        "share": option.share,
        "file": str(option.file.resolve()),
        "bundled": option.bundled,
        "sha256": sha256(option.file),
        "general_rows_available": len(pool),
        "general_rows_added": want,
        "repeated": want > len(pool),
        "task_rows": len(train_rows),
        "achieved_share": round(want / len(mixed), 4),
        "seed": seed,
    }
    return mixed, entry


def with_resolved_mix_file(
    curation: dict[str, Any] | None, base: Path | str
) -> dict[str, Any] | None:
    """A copy of ``curation`` whose ``mix_general.file`` is absolute, resolved against ``base``
    (a session's folder, as every other path in a session is)."""
    if not curation or not isinstance(curation.get("mix_general"), dict):
        return curation
    mix = dict(curation["mix_general"])
    raw = mix.get("file") or ""
    if raw and not Path(raw).expanduser().is_absolute():
        mix["file"] = str(Path(base) / raw)
    return {**curation, "mix_general": mix}
