"""What the trainer receives, and the exact labels it will train on.

``sft_trainer_inputs`` turns the curated JSONL into the datasets and ``SFTConfig`` arguments
the runner hands to TRL's ``SFTTrainer``; ``label_preview`` runs TRL's own dataset
preparation (``SFTTrainer._prepare_dataset``) and collator on the same datasets and
arguments, so the trained/masked tokens the wizard shows are the labels the trainer gets.

Completion-only loss without ``{% generation %}`` markers
---------------------------------------------------------
TRL masks assistant turns of ``messages`` data only with ``assistant_only_loss=True``, which
needs a template with ``{% generation %}`` markers (or one TRL knows how to patch). Stock
templates such as SmolLM2's have none. For those, each conversation is converted to TRL's
conversational prompt/completion form: prompt = the turns before the final assistant turn,
completion = that turn. TRL's completion mask then trains the final answer (and its
end-of-turn token) only. Earlier assistant turns of multi-turn conversations are context,
not targets; the plan's ``notes`` say so.

The loss modes (``LossPlan.mode``):

- ``assistant_only``: messages kept, ``assistant_only_loss=True`` (template has markers,
  TRL can patch it, or the ChatML fallback was applied): every assistant turn is trained.
- ``last_turn``: messages converted to prompt/completion: the final assistant turn is trained.
- ``completion_only``: prompt/completion data, ``completion_only_loss=True``.
- ``all_tokens``: plain text, or completion-only loss turned off: every token is trained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data.templates import chat_template_of, ensure_chat_template
from tuitune.core.errors import TuituneError

IGNORE_INDEX = -100
SFT_FORMATS = ("messages", "prompt_completion", "text")
PREFERENCE_FORMATS = ("preference",)


@dataclass
class LossPlan:
    """How rows become trainer inputs and which tokens carry loss (see the module doc)."""

    mode: str
    data_format: str
    assistant_only_loss: bool = False
    completion_only_loss: bool = False
    to_prompt_completion: bool = False  # messages -> (prior turns, final assistant turn)
    wrap_plain_as_chat: bool = False  # plain prompt/completion -> user/assistant turns
    fallback_template: str | None = None  # "chatml" when a base model got the fallback
    notes: list[str] = field(default_factory=list)

    def config_kwargs(self, max_length: int | None) -> dict[str, Any]:
        return {
            "max_length": max_length,
            "completion_only_loss": self.completion_only_loss,
            "assistant_only_loss": self.assistant_only_loss,
            "dataset_text_field": "text",
        }


@dataclass
class SFTInputs:
    """What the runner passes to a TRL trainer.

    ``train`` / ``eval`` are ``datasets.Dataset`` objects in TRL's standard form;
    ``config_kwargs`` go into ``SFTConfig`` / ``DPOConfig`` / ``RewardConfig`` unchanged;
    ``plan`` explains the loss masking (SFT only; None for preference data). The tokenizer
    passed in may have been given the ChatML fallback template (``plan.fallback_template``):
    save that tokenizer with the adapter.
    """

    train: Any
    eval: Any | None
    config_kwargs: dict[str, Any]
    plan: LossPlan | None = None
    notes: list[str] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a curated JSONL file (tuitune wrote it, so a bad row is a bug or tampering)."""
    path = Path(path)
    rows = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise TuituneError(
                            f"invalid JSON in curated data: {e.msg}",
                            path=path,
                            line=lineno,
                            fix="prepare the data again",
                        ) from None
    except FileNotFoundError:
        raise TuituneError("curated data file not found", path=path) from None
    if not rows:
        raise TuituneError("curated data file is empty", path=path, fix="prepare the data again")
    return rows


# --- planning -------------------------------------------------------------------------------


def _trl_can_patch(tokenizer: Any) -> bool:
    """True when TRL ships a training template (with markers) for this tokenizer's template."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(tokenizer) is not None
    except (ValueError, TypeError):
        return False
    except Exception:  # a template that fails to render the tool probe: not patchable
        return False


def plan_loss(
    data_format: str,
    tokenizer: Any,
    *,
    completion_only_loss: bool = True,
    rows: Sequence[dict[str, Any]] = (),
) -> LossPlan:
    """Choose how to feed ``data_format`` rows to SFTTrainer so the loss falls where it should.

    May give a template-less tokenizer the ChatML fallback (conversational data needs one).
    ``rows`` (a sample is enough) lets the notes count multi-turn conversations.
    """
    if data_format not in SFT_FORMATS:
        raise TuituneError(
            f"{data_format} data does not train with supervised fine-tuning",
            fix="use DPO or reward modelling for preference data, or give SFT data",
        )
    plan = LossPlan(mode="all_tokens", data_format=data_format)
    if data_format == "text":
        plan.notes.append("plain text: every token is trained (there is no prompt to mask)")
        return plan
    conversational = data_format == "messages" or any(
        isinstance(r.get("prompt"), list) for r in rows[:1]
    )
    if data_format == "prompt_completion" and not conversational:
        if chat_template_of(tokenizer) is not None:
            plan.wrap_plain_as_chat = True
            conversational = True
            plan.notes.append(
                "prompt/completion text is wrapped as a user/assistant exchange so training "
                "uses the model's chat template, as generation will"
            )
        else:
            plan.notes.append("no chat template: prompt and completion are joined as plain text")
    if conversational:
        plan.fallback_template = ensure_chat_template(tokenizer)
        if plan.fallback_template:
            plan.notes.append(
                "the model has no chat template (a base model): ChatML is used for training and "
                "saved with the adapter for generation"
            )
    if data_format == "prompt_completion":
        plan.completion_only_loss = completion_only_loss
        plan.mode = "completion_only" if completion_only_loss else "all_tokens"
        return plan
    # messages
    if not completion_only_loss:
        plan.notes.append("completion-only loss is off: prompts are trained too")
        return plan
    from tuitune.core.data.templates import has_generation_markers

    if has_generation_markers(chat_template_of(tokenizer)) or _trl_can_patch(tokenizer):
        plan.mode = "assistant_only"
        plan.assistant_only_loss = True
        plan.notes.append("every assistant turn is trained; system and user turns are masked")
        return plan
    plan.mode = "last_turn"
    plan.to_prompt_completion = True
    plan.completion_only_loss = True
    multi = sum(1 for r in rows if sum(m["role"] == "assistant" for m in r["messages"]) > 1)
    note = (
        "the chat template has no {% generation %} markers: each conversation trains on its "
        "final assistant turn (earlier turns are the prompt)"
    )
    if multi:
        note += f"; {multi} multi-turn conversations keep their earlier answers as context only"
    plan.notes.append(note)
    return plan


def to_trainer_row(row: dict[str, Any], plan: LossPlan) -> dict[str, Any]:
    """One curated row in the form the plan feeds to SFTTrainer."""
    if plan.to_prompt_completion:
        msgs = row["messages"]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        return {"prompt": msgs[:last], "completion": [msgs[last]]}
    if plan.wrap_plain_as_chat and isinstance(row.get("prompt"), str):
        return {
            "prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["completion"]}],
        }
    if plan.data_format == "messages":
        return {"messages": row["messages"]}
    if plan.data_format == "prompt_completion":
        return {"prompt": row["prompt"], "completion": row["completion"]}
    return {"text": row["text"]}


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


# --- public entry points ------------------------------------------------------------------


def sft_trainer_inputs(spec: Any, tokenizer: Any) -> SFTInputs:
    """Datasets and SFTConfig arguments for ``spec`` (a TrainSpec) with completion-only loss
    when ``spec.completion_only_loss``, also for templates without generation markers."""
    rows = read_jsonl(spec.train_file)
    plan = plan_loss(
        spec.data_format, tokenizer, completion_only_loss=spec.completion_only_loss, rows=rows
    )
    train = _dataset([to_trainer_row(r, plan) for r in rows])
    evaluation = None
    if spec.eval_file:
        evaluation = _dataset([to_trainer_row(r, plan) for r in read_jsonl(spec.eval_file)])
    return SFTInputs(train, evaluation, plan.config_kwargs(spec.max_length), plan, list(plan.notes))


def _preference_row(row: dict[str, Any], wrap: bool) -> dict[str, Any]:
    out = {k: row[k] for k in ("prompt", "chosen", "rejected") if k in row}
    if wrap and isinstance(out.get("chosen"), str):
        out["prompt"] = [{"role": "user", "content": out.get("prompt", "")}]
        out["chosen"] = [{"role": "assistant", "content": out["chosen"]}]
        out["rejected"] = [{"role": "assistant", "content": out["rejected"]}]
    return out


def preference_trainer_inputs(spec: Any, tokenizer: Any) -> SFTInputs:
    """Datasets and config arguments for DPO or reward modelling from preference JSONL.

    Rows are ``{"prompt", "chosen", "rejected"}`` (explicit prompt, as prepare writes them).
    Plain-text pairs are wrapped as user/assistant turns when the model has a chat template,
    so preference training sees the same format as generation; conversational pairs on a
    template-less model get the ChatML fallback.
    """
    if spec.data_format not in PREFERENCE_FORMATS:
        raise TuituneError(
            f"{spec.method} needs preference pairs (prompt, chosen, rejected), "
            f"the data is {spec.data_format}",
            fix="give a file with chosen and rejected answers",
        )
    rows = read_jsonl(spec.train_file)
    notes: list[str] = []
    wrap = isinstance(rows[0].get("chosen"), str) and chat_template_of(tokenizer) is not None
    if wrap:
        notes.append("plain-text pairs are wrapped as user/assistant turns (chat template)")
    conversational = wrap or isinstance(rows[0].get("chosen"), list)
    if conversational and ensure_chat_template(tokenizer):
        notes.append("the model has no chat template: ChatML is used and saved with the adapter")
    train = _dataset([_preference_row(r, wrap) for r in rows])
    evaluation = None
    if spec.eval_file:
        evaluation = _dataset([_preference_row(r, wrap) for r in read_jsonl(spec.eval_file)])
    return SFTInputs(train, evaluation, {"max_length": spec.max_length}, None, notes)


# --- the label preview ----------------------------------------------------------------------


@dataclass
class LabelPreview:
    """One example as the trainer sees it: ids, labels (-100 = not trained) and token text.

    ``spans`` groups consecutive tokens into ``(text, trained)`` runs for display.
    """

    input_ids: list[int]
    labels: list[int]
    tokens: list[str]
    truncated: bool = False

    @property
    def trained(self) -> list[bool]:
        return [label != IGNORE_INDEX for label in self.labels]

    @property
    def trained_count(self) -> int:
        return sum(self.trained)

    @property
    def spans(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        for text, on in zip(self.tokens, self.trained, strict=True):
            if out and out[-1][1] == on:
                out[-1] = (out[-1][0] + text, on)
            else:
                out.append((text, on))
        return out


class _PrepareShim:
    """The three attributes ``SFTTrainer._prepare_dataset`` reads from the trainer."""

    def __init__(self, tokenizer: Any, chat_template: str | None, completion_only: bool) -> None:
        self._tokenizer = tokenizer
        self.chat_template = chat_template
        self.completion_only_loss = completion_only


def trl_prepare(dataset: Any, tokenizer: Any, config_kwargs: dict[str, Any]) -> Any:
    """Tokenize and label ``dataset`` with TRL's own ``SFTTrainer._prepare_dataset``.

    The trainer decides two things in ``__init__`` that preparation depends on: the training
    chat template (swapped in when ``assistant_only_loss`` meets a template without markers)
    and ``completion_only_loss``; they are decided here with the same TRL functions.
    """
    import tempfile
    import warnings

    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    with tempfile.TemporaryDirectory(prefix="tuitune-preview-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SFTConfig's own deprecated defaults
        args = SFTConfig(output_dir=tmp, report_to=[], use_cpu=True, bf16=False, **config_kwargs)
    chat_template = None
    if args.assistant_only_loss and not has_generation_markers(tokenizer.chat_template):
        chat_template = get_training_chat_template(tokenizer)
    completion_only = args.completion_only_loss
    if completion_only is None:
        first = dataset[0]
        completion_only = "prompt" in first and "completion" in first
    shim = _PrepareShim(tokenizer, chat_template, completion_only)
    import datasets

    progress = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    try:
        return SFTTrainer._prepare_dataset(shim, dataset, tokenizer, args, False, None, "preview")
    finally:
        if progress:
            datasets.utils.logging.enable_progress_bar()


def collate(prepared: Any, tokenizer: Any, indices: Sequence[int]) -> dict[str, Any]:
    """A batch built by TRL's own collator, as the trainer's dataloader builds it."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = DataCollatorForLanguageModeling(pad_token_id=pad)
    return collator([{k: prepared[i][k] for k in ("input_ids", "labels")} for i in indices])


def label_preview(
    rows: Sequence[dict[str, Any]],
    tokenizer: Any,
    *,
    data_format: str,
    completion_only_loss: bool = True,
    max_length: int | None = 1024,
) -> tuple[list[LabelPreview], LossPlan]:
    """The labels the trainer will use for curated ``rows`` (standard form), via TRL.

    Goes through ``plan_loss`` -> ``to_trainer_row`` -> TRL's ``_prepare_dataset`` (the same
    path ``sft_trainer_inputs`` and the runner use). Rows TRL drops because truncation left
    no trained token are returned with all labels -100 (that is what "all labels masked"
    looks like in the trainer: the example is silently skipped).
    """
    rows = list(rows)
    plan = plan_loss(data_format, tokenizer, completion_only_loss=completion_only_loss, rows=rows)
    config = plan.config_kwargs(max_length)
    trainer_rows = [to_trainer_row(r, plan) for r in rows]
    # Prepare without truncation so fully-masked rows are not filtered out of the preview,
    # then apply TRL's keep_start truncation ourselves to mark what is cut.
    full = trl_prepare(_dataset(trainer_rows), tokenizer, {**config, "max_length": None})
    previews = []
    for ex in full:
        ids, labels = list(ex["input_ids"]), list(ex["labels"])
        truncated = max_length is not None and len(ids) > max_length
        if truncated:
            ids, labels = ids[:max_length], labels[:max_length]
        tokens = [tokenizer.decode([i]) for i in ids]
        previews.append(LabelPreview(ids, labels, tokens, truncated))
    return previews, plan
