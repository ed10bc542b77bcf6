"""Masking checks on the labels the trainer will really use (``training_view.label_preview``).

The failures this catches are the classic silent ones: a base model with no chat template,
every label -100 (the example trains nothing), the end-of-turn/EOS token never trained (the
model rambles forever), examples cut by ``max_length``, and a prompt rendered differently
in training than at generation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data.stats import Flag
from tuitune.core.data.templates import chat_template_of
from tuitune.core.data.training_view import LabelPreview, LossPlan, _clean, label_preview

PREVIEW_SAMPLE = 16


@dataclass
class MaskingReport:
    """Labels of a sample of rows and what is wrong with them.

    ``previews[i]`` belongs to ``rows[i]`` of the sample; ``warnings`` are ``Flag``s (red =
    training would be wrong, amber = worth a look); ``template`` is ``"model"``,
    ``"chatml-fallback"``, ``"none"`` (plain text without template) or, for input_output
    segments, ``"not used (input_output segments)"``.
    """

    plan: LossPlan
    previews: list[LabelPreview]
    rows: list[dict[str, Any]]
    template: str
    eos_ids: list[int] = field(default_factory=list)
    warnings: list[Flag] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(w.level == "red" for w in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.plan.mode,
            "template": self.template,
            "notes": self.plan.notes,
            "warnings": [{"level": w.level, "message": w.message} for w in self.warnings],
            "examples": [
                {
                    "tokens": len(p.input_ids),
                    "trained": p.trained_count,
                    "truncated": p.truncated,
                    "spans": [[t, on] for t, on in p.spans],
                }
                for p in self.previews[:3]
            ],
        }


def eos_token_ids(tokenizer: Any, model_dir: str | Path | None = None) -> list[int]:
    """The tokens that end generation: the tokenizer's EOS plus generation_config's."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if model_dir is not None and (Path(model_dir) / "generation_config.json").is_file():
        import json

        cfg = json.loads((Path(model_dir) / "generation_config.json").read_text(encoding="utf-8"))
        eos = cfg.get("eos_token_id")
        for i in eos if isinstance(eos, list) else [eos]:
            if isinstance(i, int) and i not in ids:
                ids.append(i)
    return ids


def _last_trained(p: LabelPreview, tokenizer: Any) -> int | None:
    """The last trained token that is not whitespace (templates often end turns with \\n)."""
    for tid, on in zip(reversed(p.input_ids), reversed(p.trained), strict=True):
        if on and tokenizer.decode([tid]).strip():
            return tid
    return None


def _generation_prompt(row: dict[str, Any], plan: LossPlan) -> list[dict[str, Any]] | None:
    """The conversation that precedes the trained answer, as the model will get it in chat."""
    if "messages" in row:
        msgs = row["messages"]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        return msgs[:last]
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        return prompt
    if isinstance(prompt, str) and plan.wrap_plain_as_chat:
        return [{"role": "user", "content": prompt}]
    return None


def check_masking(
    rows: Sequence[dict[str, Any]],
    tokenizer: Any,
    *,
    data_format: str,
    completion_only_loss: bool = True,
    max_length: int | None = 1024,
    model_dir: str | Path | None = None,
    sample: int = PREVIEW_SAMPLE,
) -> MaskingReport:
    """Preview the labels of the first ``sample`` rows and list what is wrong with them."""
    had_template = chat_template_of(tokenizer) is not None
    rows = list(rows[:sample])
    previews, plan = label_preview(
        rows,
        tokenizer,
        data_format=data_format,
        completion_only_loss=completion_only_loss,
        max_length=max_length,
    )
    if plan.drop_undesirable:  # label_preview left the undesirable answers out
        rows = [r for r in rows if r.get("label") is not False]
    template = (
        "model" if had_template else ("chatml-fallback" if plan.fallback_template else "none")
    )
    if plan.data_format == "input_output":
        template = "not used (input_output segments)"
    report = MaskingReport(plan, previews, rows, template, eos_token_ids(tokenizer, model_dir))
    warn = report.warnings.append
    if plan.fallback_template:
        warn(
            Flag(
                "amber",
                "the model has no chat template (a base model): tuitune uses ChatML for training "
                "and saves it with the adapter; pick the family's template if it has one",
            )
        )
    masked = [i for i, p in enumerate(previews) if p.trained_count == 0]
    if masked:
        warn(
            Flag(
                "red",
                f"{len(masked)} of {len(previews)} previewed examples have every label masked "
                "(-100): they train nothing"
                + (" (cut by max_length)" if any(previews[i].truncated for i in masked) else ""),
            )
        )
    truncated = sum(p.truncated for p in previews)
    if truncated:
        warn(
            Flag("amber", f"{truncated} previewed examples are longer than max_length={max_length}")
        )
    no_eos = [
        i
        for i, p in enumerate(previews)
        if p.trained_count and not p.truncated and _last_trained(p, tokenizer) not in report.eos_ids
    ]
    if no_eos:
        tok = tokenizer.convert_ids_to_tokens(report.eos_ids[:1])
        warn(
            Flag(
                "red",
                f"{len(no_eos)} previewed examples do not end the answer with EOS {tok}: "
                "the model would not learn to stop",
            )
        )
    mismatched = 0
    if plan.data_format != "text":
        for row, p in zip(rows, previews, strict=True):
            prompt = _generation_prompt(row, plan)
            if not prompt:
                continue

            ids = tokenizer.apply_chat_template(
                _clean(prompt),
                tools=row.get("tools") or None,
                chat_template=plan.training_template,
                tokenize=True,
                add_generation_prompt=True,
                return_dict=False,
            )
            if list(p.input_ids[: len(ids)]) != list(ids) and not p.truncated:
                mismatched += 1
    if mismatched:
        warn(
            Flag(
                "amber",
                f"{mismatched} previewed examples render the prompt differently in training than "
                "at generation (template mismatch): answers may drift at inference",
            )
        )
    return report
