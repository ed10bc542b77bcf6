"""The data pipeline: load -> detect -> convert -> curate -> split -> write, with a manifest.

``prepare_data`` reads the user's files (never writing to them), converts every row to TRL's
standard form, runs the curation steps and writes ``train.jsonl``, ``eval.jsonl`` and
``manifest.json`` atomically into ``out_dir`` (the run's ``data/`` folder). The manifest
records the inputs (with size and SHA-256), the detected format, every curation step with its
counts, the split and the seed, so a run can say exactly what it trained on.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_bytes_atomic, write_json_atomic
from tuitune.core.data.curation import CurationEmptyError, CurationReport, Item, curate, row_text
from tuitune.core.data.formats import (
    FormatGuess,
    Notes,
    is_kept_notice,
)
from tuitune.core.data.loading import LoadReport
from tuitune.core.data.mapping import ColumnMap
from tuitune.core.data.mixture import mix_general, parse_mix_option
from tuitune.core.data.reading import file_size, read_and_convert, sha256
from tuitune.core.errors import TuituneError

MANIFEST_VERSION = 1
MIN_VAL, MAX_VAL = 0.0, 0.5


@dataclass
class PreparedData:
    """What ``prepare_data`` wrote and what it found.

    ``train_file`` / ``eval_file`` are the curated JSONL files (``eval_file`` is None when no
    validation split was made); ``data_format`` is a ``TrainSpec.DATA_FORMATS`` value;
    ``report`` is the curation report; ``guess`` the format detection; ``load`` the loading
    report (bad rows skipped); ``stats`` is filled by callers that compute statistics.
    """

    train_file: Path
    eval_file: Path | None
    data_format: str
    manifest: dict[str, Any]
    report: CurationReport
    guess: FormatGuess
    load: LoadReport
    train_rows: int = 0
    eval_rows: int = 0
    mixed_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    train_lengths: list[int] | None = None  # tokens per training row, when a tokenizer ran
    kept: list[str] = field(default_factory=list)  # what beyond text was kept (tools, ...)
    mappings: list[str] = field(default_factory=list)  # column mappings applied, described


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_MEDIA_TOKEN = re.compile(r"<(image|video|audio)>")


def content_warnings(items: Sequence[Item], target: str) -> list[str]:
    """What in the text itself will not train as the user expects: ``{{placeholder}}``
    templates left unfilled, literal ``<image>`` tokens whose media is dropped, KTO labels
    that supervised training cannot use."""
    out: list[str] = []
    names: dict[str, None] = {}
    placeholder_rows = media_rows = 0
    media: dict[str, None] = {}
    for it in items:
        text = row_text(it.row)
        found = _PLACEHOLDER.findall(text)
        if found:
            placeholder_rows += 1
            names.update(dict.fromkeys(found))
        kinds = _MEDIA_TOKEN.findall(text)
        if kinds:
            media_rows += 1
            media.update(dict.fromkeys(kinds))
    if placeholder_rows:
        shown = ", ".join("{{" + n + "}}" for n in list(names)[:5])
        out.append(
            f"{placeholder_rows} rows contain template placeholders ({shown}): they would be "
            "trained literally; fill them in first (LLaMA-Factory's identity.json expects it)"
        )
    if media_rows:
        shown = ", ".join(f"<{k}>" for k in media)
        out.append(
            f"{media_rows} rows contain the literal {shown} placeholder: the media is not "
            "loaded (text-only training), so the text trains with the placeholder in it"
        )
    if target == "unpaired_preference":
        bad = sum(1 for it in items if it.row.get("label") is False)
        good = len(items) - bad
        out.append(
            f"unpaired preference (KTO): {good} desirable and {bad} undesirable answers; "
            "tuitune has no KTO trainer: supervised fine-tuning trains the desirable answers "
            "only and leaves the undesirable ones out"
        )
    return out


def notes_summary(notes: Notes, rows: int) -> tuple[list[str], list[str]]:
    """(warnings, kept) lines from conversion notes, each with the number of rows."""
    warnings, kept = [], []
    for message, n in notes.items():
        line = f"{message} [{n} of {rows} rows]"
        (kept if is_kept_notice(message) else warnings).append(line)
    return warnings, kept


def check_val_ratio(val_ratio: float) -> None:
    """The validation share must be 0-0.5 (the CLI's help says the same)."""
    if not MIN_VAL <= val_ratio <= MAX_VAL:
        raise TuituneError(
            f"validation share {val_ratio} is out of range 0-0.5",
            fix="use 0-0.5 (0.1-0.2 is typical; 0 for no validation split)",
        )


def split_items(items: list[Item], val_ratio: float, seed: int) -> tuple[list[Item], list[Item]]:
    """A seeded shuffle-split; at least one validation row when ``val_ratio`` > 0."""
    check_val_ratio(val_ratio)
    if val_ratio == 0 or len(items) < 2:
        return list(items), []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(items) * val_ratio))
    val_idx = set(order[:n_val])
    train = [it for i, it in enumerate(items) if i not in val_idx]
    val = [it for i, it in enumerate(items) if i in val_idx]
    return train, val


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    return write_bytes_atomic(path, data)


def load_tokenizer(tokenizer_dir: Path | str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(tokenizer_dir), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        raise TuituneError(f"cannot load the tokenizer ({e})", path=tokenizer_dir) from None


def prepare_data(
    train_paths: Sequence[Path | str],
    out_dir: Path | str,
    *,
    eval_paths: Sequence[Path | str] = (),
    fmt: str = "auto",
    val_ratio: float = 0.1,
    seed: int = 42,
    on_bad_rows: str = "stop",
    curation: dict[str, Any] | None = None,
    tokenizer_dir: Path | str | None = None,
    max_length: int | None = None,
    tokenizer: Any = None,
    progress: Callable[[str], None] | None = None,
    columns: ColumnMap | str | dict[str, str] | None = None,
    text_unit: str = "auto",
) -> PreparedData:
    """Load, convert, curate and split the user's data into ``out_dir``; return what was done.

    ``columns`` maps non-standard column names (``"prompt=question,completion=answer"``);
    ``text_unit`` says how ``.txt`` files split into documents (``loading.TEXT_UNITS``).
    Curation that leaves nothing raises ``CurationEmptyError`` carrying the report.

    ``fmt`` is ``"auto"`` or a source format (``formats.SOURCE_FORMATS``). ``on_bad_rows`` is
    ``"stop"`` (first bad row raises TuituneError with file and line) or ``"skip"``.
    ``curation`` overrides ``curation.DEFAULTS``. With ``tokenizer_dir`` (or an already
    loaded ``tokenizer``) and ``max_length``, rows longer than ``max_length`` tokens are
    dropped. When ``eval_paths`` are given they are the validation set (curated the same way,
    minus duplicates of training rows) and ``val_ratio`` is ignored.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TuituneError(
            "the output folder is an existing file",
            path=out_dir,
            fix="give a folder (it is created) for train.jsonl, eval.jsonl and manifest.json",
        )
    check_val_ratio(val_ratio)
    train_paths = [Path(p) for p in train_paths]
    eval_paths = [Path(p) for p in eval_paths]
    say = progress or (lambda _msg: None)
    say("Loading data")
    load = LoadReport()
    notes: Notes = {}
    mappings: list[str] = []
    items, guess, mixed = read_and_convert(
        train_paths,
        fmt=fmt,
        on_bad_rows=on_bad_rows,
        load=load,
        columns=columns,
        text_unit=text_unit,
        notes=notes,
        mappings=mappings,
    )
    warnings, kept = notes_summary(notes, len(items))
    warnings += content_warnings(items, guess.target)
    if tokenizer is None and tokenizer_dir is not None:
        say("Loading the tokenizer")
        tokenizer = load_tokenizer(tokenizer_dir)
    items, report = curate(
        items, guess.target, curation, tokenizer=tokenizer, max_length=max_length, progress=say
    )
    dup = sum(s.dropped for s in report.steps if s.name in ("dedup_exact", "dedup_near"))
    if dup and dup * 5 >= report.rows_in:
        warnings.append(
            f"{dup} of {report.rows_in} rows were duplicates ({report.rows_in} -> "
            f"{report.rows_in - dup} after deduplication): the file may repeat a few examples "
            "many times; check how it was made"
        )
    if eval_paths:
        ev_items, ev_guess, _ = read_and_convert(
            eval_paths,
            fmt=fmt,
            on_bad_rows=on_bad_rows,
            load=load,
            columns=columns,
            text_unit=text_unit,
        )
        if ev_guess.target != guess.target:
            raise TuituneError(
                f"validation data is {ev_guess.name}, training data is {guess.name}",
                path=eval_paths[0],
                fix="give both sets in the same format",
            )
        ev_items, _ev_report = curate(
            ev_items, guess.target, curation, tokenizer=tokenizer, max_length=max_length
        )
        train_keys = {json.dumps(it.row, sort_keys=True) for it in items}
        before = len(ev_items)
        ev_items = [it for it in ev_items if json.dumps(it.row, sort_keys=True) not in train_keys]
        if before - len(ev_items):
            warnings.append(f"{before - len(ev_items)} validation rows also in training: removed")
        train, val = items, ev_items
    else:
        train, val = split_items(items, val_ratio, seed)
    if not train:
        raise CurationEmptyError(
            report,
            path=train_paths[0],
            fix="see the curation report above (tuitune data check prints it) and relax a step",
        )
    train_rows = [it.row for it in train]
    mixture: dict[str, Any] | None = None
    mix_option = parse_mix_option((curation or {}).get("mix_general"))
    if mix_option is not None:
        say("Mixing in general data")
        train_rows, mixture = mix_general(
            train_rows,
            mix_option,
            target_format=guess.target,
            seed=seed,
            curation=curation,
            tokenizer=tokenizer,
            max_length=max_length,
            exclude=[it.row for it in val],
        )
    say("Writing the curated set")
    train_file = write_jsonl(out_dir / "train.jsonl", train_rows)
    eval_file = write_jsonl(out_dir / "eval.jsonl", [it.row for it in val]) if val else None
    if eval_file is None and (out_dir / "eval.jsonl").exists():
        (out_dir / "eval.jsonl").unlink()  # a stale split from an earlier preparation
    if mixed:
        warnings.append(f"{mixed} rows in another format than {guess.name} were left out")
    manifest = {
        "schema_version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": [
            {"path": str(p.resolve()), "bytes": file_size(p), "sha256": sha256(p)}
            for p in [*train_paths, *eval_paths]
        ],
        "format": {
            "source": guess.name,
            "data_format": guess.target,
            "confidence": round(guess.confidence, 3),
            "reason": guess.reason,
            "mixed": guess.mixed,
            "mappings": mappings,
            "kept": kept,
        },
        "loading": load.to_dict(),
        "curation": report.to_dict(),
        "split": {
            "val_ratio": 0.0 if eval_paths else val_ratio,
            "seed": seed,
            "eval_from_files": bool(eval_paths),
            "train_rows": len(train_rows),
            "eval_rows": len(val),
        },
        "mixture": mixture,
        "tokenizer": str(tokenizer_dir) if tokenizer_dir else None,
        "max_length": max_length,
        "outputs": {"train": train_file.name, "eval": eval_file.name if eval_file else None},
        "warnings": warnings,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_json_atomic(out_dir / "manifest.json", manifest)
    return PreparedData(
        train_file=train_file,
        eval_file=eval_file,
        data_format=guess.target,
        manifest=manifest,
        report=report,
        guess=guess,
        load=load,
        train_rows=len(train_rows),
        eval_rows=len(val),
        mixed_dropped=mixed,
        warnings=warnings,
        kept=kept,
        mappings=mappings,
        train_lengths=[it.tokens for it in train]
        if mixture is None and all(it.tokens is not None for it in train)
        else None,
    )
