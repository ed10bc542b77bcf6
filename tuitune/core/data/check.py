"""The headless pre-flight: prepare, measure and preview a data set in one call.

Used by ``tuitune data check`` and by the wizard's Data/Template screens (run it in a worker
thread: it loads a tokenizer and TRL). Writes only into ``out_dir`` (a temporary directory
when none is given), never next to the user's files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data.masking import MaskingReport, check_masking
from tuitune.core.data.prepare import PreparedData, load_tokenizer, prepare_data
from tuitune.core.data.stats import DataStats, compute_stats
from tuitune.core.data.training_view import SFT_FORMATS, plan_loss, read_jsonl
from tuitune.core.errors import TuituneError


@dataclass
class DataCheck:
    """Everything known about a data set before training.

    ``problems`` are reasons the data cannot train as is (the CLI exits non-zero when there
    are any); ``masking`` is None without a model or for preference data.
    """

    prepared: PreparedData
    stats: DataStats
    masking: MaskingReport | None
    model_dir: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        p = self.prepared
        return {
            "usable": self.usable,
            "problems": self.problems,
            "notes": self.notes,
            "format": p.manifest["format"],
            "loading": p.manifest["loading"],
            "curation": p.manifest["curation"],
            "split": p.manifest["split"],
            "warnings": p.warnings,
            "kept": p.kept,
            "mappings": p.mappings,
            "stats": self.stats.to_dict(),
            "masking": self.masking.to_dict() if self.masking else None,
            "model": self.model_dir,
        }


def check_data(
    paths: Sequence[str | Path],
    *,
    model_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    fmt: str = "auto",
    on_bad_rows: str = "stop",
    curation: dict[str, Any] | None = None,
    max_length: int = 1024,
    val_ratio: float = 0.1,
    seed: int = 42,
    completion_only_loss: bool = True,
    progress: Callable[[str], None] | None = None,
    columns: Any = None,
    text_unit: str = "auto",
) -> DataCheck:
    """Prepare ``paths`` (into ``out_dir`` or a temporary directory), compute stats and, with
    a model, the masking report on a sample. TuituneError for input that cannot be read;
    a template that cannot render the data's tools is a problem (the data is not usable)."""
    tokenizer = load_tokenizer(model_dir) if model_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="tuitune-check-") as tmp:
        target = Path(out_dir) if out_dir is not None else Path(tmp)
        prepared = prepare_data(
            list(paths),
            target,
            fmt=fmt,
            val_ratio=val_ratio,
            seed=seed,
            on_bad_rows=on_bad_rows,
            curation=curation,
            max_length=max_length if tokenizer is not None else None,
            tokenizer=tokenizer,
            progress=progress,
            columns=columns,
            text_unit=text_unit,
        )
        rows = read_jsonl(prepared.train_file)
    dup = sum(s.dropped for s in prepared.report.steps if s.name in ("dedup_exact", "dedup_near"))
    if progress is not None:
        progress("Computing statistics")
    stats = compute_stats(
        rows,
        prepared.data_format,
        tokenizer=tokenizer,
        max_length=max_length,
        eval_rows=prepared.eval_rows,
        duplicates_removed=dup,
        lengths=prepared.train_lengths,
    )
    check = DataCheck(prepared, stats, None, str(model_dir) if model_dir else None)
    if prepared.load.bad:
        check.notes.append(f"{prepared.load.bad} bad rows skipped")
    if tokenizer is None:
        check.notes.append("no model given: token lengths and masking were not checked")
        if any(k.startswith(("tools:", "tool calls:")) for k in prepared.kept):
            check.notes.append(
                "the data uses tools: check with --model that the chat template renders them"
            )
    elif prepared.data_format in SFT_FORMATS:
        if progress is not None:
            progress("Previewing labels")

        try:  # the tool check looks at every row, the preview at a sample
            plan_loss(
                prepared.data_format,
                tokenizer,
                completion_only_loss=completion_only_loss,
                rows=rows,
            )
        except TuituneError as e:
            check.problems.append(e.message + (f" (fix: {e.fix})" if e.fix else ""))
            return check
        check.masking = check_masking(
            rows,
            tokenizer,
            data_format=prepared.data_format,
            completion_only_loss=completion_only_loss,
            max_length=max_length,
            model_dir=model_dir,
        )
        check.problems += [w.message for w in check.masking.warnings if w.level == "red"]
    else:
        check.notes.append(f"{prepared.data_format} data: label masking is set by the trainer")
    return check
