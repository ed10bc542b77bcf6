"""What the trainer receives, and the exact labels it will train on.

``sft_trainer_inputs`` turns the curated JSONL into the datasets and ``SFTConfig`` arguments
the runner hands to TRL's ``SFTTrainer``; ``label_preview`` runs TRL's own dataset
preparation (``SFTTrainer._prepare_dataset``) and collator on the same datasets and
arguments, so the trained/masked tokens the wizard shows are the labels the trainer gets.

Which tokens carry loss in a conversation
------------------------------------------
Every assistant turn is trained by default, tool-call turns included, on any template: TRL's
``assistant_only_loss`` needs ``{% generation %}`` markers, which stock templates such as
SmolLM2's lack, and converting a conversation to prompt/completion would train its final
turn only. So tuitune tokenizes conversations itself and hands TRL ``input_ids`` plus an
``assistant_masks`` column; TRL builds the labels from that mask (``SFTTrainer._prepare_dataset``
on processed data), truncates, drops fully masked rows and packs as it always does.

The mask is computed per turn from the rendered template, with TRL's own functions: turn i
covers the tokens between the conversation up to turn i (with the generation prompt before an
assistant turn) and the conversation through turn i, both tokenized with the model's
template and compared to the whole by ``trl.data_utils.common_prefix_length`` (the rule TRL
uses to find a completion). For a conversation's final turn this is exactly TRL's
prompt/completion mask, so single-turn data trains the same tokens as before; like that mask,
each turn includes the template's separator after its end-of-turn token (the newline after
``<|im_end|>``). Where the template has ``{% generation %}`` markers (or TRL ships a patched
training template for it) the markers' own mask is used inside each trained turn, so the
labels equal TRL's ``assistant_only_loss`` labels. Per-turn weights (``"weight"`` on a turn,
from OpenAI ``weight`` or LLaMA-Factory ``loss_weight``) switch turns off or on. ``tools`` are
passed to the template (``apply_chat_template(..., tools=...)``); a template that does not
render tools, tool calls or tool results is refused, since the tool data would vanish.

The loss modes (``LossPlan.mode``):

- ``assistant_turns``: conversations (messages, conversational or wrapped prompt/completion):
  the trained turns as above.
- ``completion_only``: plain-text prompt/completion without a chat template,
  ``completion_only_loss=True`` (TRL's completion mask).
- ``labelled_segments``: Axolotl's template-free ``input_output`` rows. As Axolotl does it,
  each segment's text is tokenized on its own without special tokens and the ids are
  concatenated (no chat template: BOS, EOS and spacing are the text's own); the segments
  labelled true are trained. tuitune hands TRL ``input_ids`` + ``assistant_masks`` as for
  conversations. With completion-only loss off every segment is trained (Axolotl's
  ``train_on_inputs``).
- ``all_tokens``: plain text, or completion-only loss turned off: every token is trained.

Unpaired preference (KTO) rows train with SFT as prompt/completion on their desirable
answers only; the undesirable ones are left out (tuitune has no KTO trainer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data.templates import (
    chat_template_of,
    ensure_chat_template,
    has_generation_markers,
)
from tuitune.core.errors import TuituneError

IGNORE_INDEX = -100
SFT_FORMATS = ("messages", "prompt_completion", "text", "unpaired_preference", "input_output")
PREFERENCE_FORMATS = ("preference",)


@dataclass
class LossPlan:
    """How rows become trainer inputs and which tokens carry loss (see the module doc)."""

    mode: str
    data_format: str
    assistant_only_loss: bool = False
    completion_only_loss: bool = False
    wrap_plain_as_chat: bool = False  # plain prompt/completion -> user/assistant turns
    fallback_template: str | None = None  # "chatml" when a base model got the fallback
    notes: list[str] = field(default_factory=list)
    per_turn: bool = False  # conversations tokenized by tuitune with a per-turn mask
    mask_source: str = ""  # "generation markers" | "TRL training template" | "per turn"
    training_template: str | None = None  # TRL's patched template, when it has one
    tools: bool = False  # rows pass tools / tool turns through the template
    drop_undesirable: bool = False  # unpaired preference: only label=true rows train
    mismatched: int = 0  # trained turns whose prefix renders differently (see the doc)

    @property
    def completion_only_loss_for_turns(self) -> bool:
        return self.mode == "assistant_turns"

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


def _trl_training_template(tokenizer: Any) -> str | None:
    """TRL's patched training template (with markers) for this tokenizer's template, if any."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(tokenizer)
    except Exception:  # unsupported template (ValueError) or one that fails TRL's probe
        return None


_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "tuitune_probe_tool",
        "description": "probe",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
_PROBE_CALL = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "tuitune_probe_call", "arguments": {}}}
        ],
    },
    {"role": "tool", "name": "tuitune_probe_call", "content": "tuitune_probe_result"},
]


def tool_support(tokenizer: Any, chat_template: str | None = None) -> list[str]:
    """What tool data the template drops: [] when it renders tool definitions, tool calls
    and tool results; otherwise the missing parts ("tool definitions", ...)."""
    missing = []
    kw: dict[str, Any] = {"tokenize": False}
    if chat_template:
        kw["chat_template"] = chat_template
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}], tools=[_PROBE_TOOL], **kw
        )
    except Exception:
        text = ""
    if "tuitune_probe_tool" not in text:
        missing.append("tool definitions")
    try:
        text = tokenizer.apply_chat_template(_PROBE_CALL, **kw)
    except Exception:
        text = ""
    if "tuitune_probe_call" not in text.split("tuitune_probe_result")[0]:
        missing.append("tool calls")
    if "tuitune_probe_result" not in text:
        missing.append("tool results")
    return missing


def _uses_tools(rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(rows with tool definitions, rows with tool-call or tool-result turns)."""
    defs = turns = 0
    for r in rows:
        defs += bool(r.get("tools"))
        msgs = conversation_turns(r) or []
        turns += any(m.get("tool_calls") or m["role"] == "tool" for m in msgs)
    return defs, turns


def conversation_turns(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The row as one conversation with per-turn weights, or None for plain text rows:
    messages as they are; conversational prompt/completion as prompt turns (not trained)
    followed by the completion turns."""
    if "messages" in row:
        return row["messages"]
    if isinstance(row.get("prompt"), list) and isinstance(row.get("completion"), list):
        return [{**m, "weight": 0} for m in row["prompt"]] + list(row["completion"])
    return None


def plan_loss(
    data_format: str,
    tokenizer: Any,
    *,
    completion_only_loss: bool = True,
    rows: Sequence[dict[str, Any]] = (),
) -> LossPlan:
    """Choose how to feed ``data_format`` rows to SFTTrainer so the loss falls where it should.

    May give a template-less tokenizer the ChatML fallback (conversational data needs one).
    ``rows`` (a sample is enough; all rows for tool checks) lets the notes count multi-turn
    conversations and lets tool data be checked against the template. TuituneError when the
    template cannot render the rows' tools.
    """
    if data_format not in SFT_FORMATS:
        raise TuituneError(
            f"{data_format} data does not train with supervised fine-tuning",
            fix="use DPO or reward modelling for preference data, or give SFT data",
        )
    plan = LossPlan(mode="all_tokens", data_format=data_format)
    if data_format == "input_output":
        return _segments_plan(plan, completion_only_loss, rows)
    if data_format == "text":
        plan.notes.append("plain text: every token is trained (there is no prompt to mask)")
        return plan
    if data_format == "unpaired_preference":
        plan.drop_undesirable = True
        plan.notes.append(
            "unpaired preference (KTO) rows: the desirable answers are trained as "
            "prompt/completion; the undesirable ones (label false) are left out (no KTO trainer)"
        )
    conversational = data_format == "messages" or any(
        isinstance(r.get("prompt"), list) for r in rows[:1]
    )
    if not conversational:
        if chat_template_of(tokenizer) is not None:
            plan.wrap_plain_as_chat = True
            conversational = True
            plan.notes.append(
                "prompt/completion text is wrapped as a user/assistant exchange so training "
                "uses the model's chat template, as generation will"
            )
        else:
            plan.notes.append("no chat template: prompt and completion are joined as plain text")
            plan.completion_only_loss = completion_only_loss
            plan.mode = "completion_only" if completion_only_loss else "all_tokens"
            return plan
    plan.fallback_template = ensure_chat_template(tokenizer)
    if plan.fallback_template:
        plan.notes.append(
            "the model has no chat template (a base model): ChatML is used for training and "
            "saved with the adapter for generation"
        )
    plan.per_turn = True

    if has_generation_markers(chat_template_of(tokenizer)):
        plan.mask_source = "generation markers"
    else:
        plan.training_template = _trl_training_template(tokenizer)
        plan.mask_source = "TRL training template" if plan.training_template else "per turn"
    defs, tool_turns = _uses_tools(rows)
    if defs or tool_turns:
        missing = tool_support(tokenizer, plan.training_template)
        if missing:
            raise TuituneError(
                f"the model's chat template does not render {' or '.join(missing)}, and "
                f"{max(defs, tool_turns)} rows use tools: that part would be dropped silently",
                fix="pick a model whose chat template supports tools (Qwen2.5/Qwen3, Llama "
                "3.1+, SmolLM3, Mistral), or remove the tools and tool turns from the data",
            )
        plan.tools = True
        plan.notes.append(
            f"tools: {defs} rows pass tool definitions to the template, {tool_turns} rows "
            "have tool-call / tool-result turns (tool calls are trained, results are not)"
        )
    if not completion_only_loss:
        plan.notes.append("completion-only loss is off: prompts are trained too")
        return plan
    plan.mode = "assistant_turns"
    multi = sum(
        1
        for r in rows
        if sum(is_trained_turn(m) for m in (conversation_turns(r) or _wrapped(r, plan) or [])) > 1
    )
    how = {
        "generation markers": "by the template's {% generation %} markers",
        "TRL training template": "by TRL's training template for this model",
        "per turn": "per turn in the rendered template, which has no generation markers",
    }[plan.mask_source]
    note = f"every assistant turn is trained (found {how}); system, user and tool turns are "
    note += "masked, or as per-turn weights say"
    if multi:
        note += f"; {multi} rows train more than one turn"
    plan.notes.append(note)
    return plan


def _segments_plan(
    plan: LossPlan, completion_only_loss: bool, rows: Sequence[dict[str, Any]]
) -> LossPlan:
    plan.notes.append(
        "Axolotl input_output: each segment is tokenized as written and the segments are "
        "concatenated (no chat template, no special tokens added: BOS, EOS and spacing are "
        "the text's own)"
    )
    if completion_only_loss:
        plan.mode = "labelled_segments"
        masked = sum(1 for r in rows if any(not s["label"] for s in r["segments"]))
        plan.notes.append(
            "segments labelled true are trained, those labelled false are masked"
            + (f"; {masked} rows have masked segments" if masked else "")
        )
    else:
        plan.notes.append("completion-only loss is off: every segment is trained")
    return plan


def tokenize_segments(
    segments: list[dict[str, Any]], tokenizer: Any, *, labelled: bool = True
) -> dict[str, Any]:
    """``input_ids`` and ``assistant_masks`` for one input_output row, as Axolotl builds them:
    each segment tokenized alone with ``add_special_tokens=False``, ids concatenated, the
    mask 1 on the segments labelled true (on all of them when ``labelled`` is False)."""
    ids: list[int] = []
    mask: list[int] = []
    for seg in segments:
        part = tokenizer(seg["text"], add_special_tokens=False)["input_ids"]
        ids += part
        mask += [1 if seg["label"] or not labelled else 0] * len(part)
    return {"input_ids": ids, "assistant_masks": mask}


def is_trained_turn(m: dict[str, Any]) -> bool:
    """A turn carries loss: its weight when given, else assistant turns only."""
    return bool(m.get("weight", 1 if m["role"] == "assistant" else 0))


def _wrapped(row: dict[str, Any], plan: LossPlan) -> list[dict[str, Any]] | None:
    if plan.wrap_plain_as_chat and isinstance(row.get("prompt"), str):
        return [
            {"role": "user", "content": row["prompt"], "weight": 0},
            {"role": "assistant", "content": row["completion"]},
        ]
    return None


def _clean(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns as the template gets them (the weight is tuitune's, not the template's)."""
    return [{k: v for k, v in m.items() if k != "weight"} for m in messages]


def tokenize_conversation(
    messages: list[dict[str, Any]],
    tokenizer: Any,
    plan: LossPlan,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``input_ids`` and ``assistant_masks`` for one conversation (see the module doc).

    ``mismatch`` counts trained turns whose prefix renders differently alone than inside
    the whole conversation (the turn then starts where the two diverge, as in TRL).
    """
    from trl.data_utils import _tokenize, common_prefix_length

    kw: dict[str, Any] = {"tools": tools or None}
    if plan.training_template:
        kw["chat_template"] = plan.training_template
    turns = _clean(messages)
    markers = plan.mask_source in ("generation markers", "TRL training template")
    full = _tokenize(tokenizer, turns, return_assistant_tokens_mask=markers, **kw)
    ids = list(full["input_ids"])
    if not plan.completion_only_loss_for_turns:
        return {"input_ids": ids, "assistant_masks": [1] * len(ids), "mismatch": 0}
    template_mask = list(full["assistant_masks"]) if markers else None
    mask = [0] * len(ids)
    mismatch = 0
    for i, m in enumerate(messages):
        if not is_trained_turn(m):
            continue
        if i:
            before = _tokenize(
                tokenizer, turns[:i], add_generation_prompt=m["role"] == "assistant", **kw
            )["input_ids"]
            start = common_prefix_length(list(before), ids)
            mismatch += start < len(before)
        else:
            start = 0
        if i < len(messages) - 1:
            through = _tokenize(tokenizer, turns[: i + 1], **kw)["input_ids"]
            end = common_prefix_length(list(through), ids)
        else:
            end = len(ids)
        for t in range(start, end):
            on = template_mask[t] if template_mask is not None and m["role"] == "assistant" else 1
            mask[t] = 1 if on else mask[t]
    return {"input_ids": ids, "assistant_masks": mask, "mismatch": mismatch}


def to_trainer_row(row: dict[str, Any], plan: LossPlan, tokenizer: Any = None) -> dict[str, Any]:
    """One curated row in the form the plan feeds to SFTTrainer (tokenized for
    conversations and input_output segments: ``input_ids`` + ``assistant_masks``)."""
    if plan.data_format == "input_output":
        if tokenizer is None:
            raise TuituneError("tokenizing input_output segments needs the tokenizer")
        if "segments" not in row:
            raise TuituneError("a row has no segments", fix="prepare the data again")
        return tokenize_segments(
            row["segments"], tokenizer, labelled=plan.mode == "labelled_segments"
        )
    if plan.per_turn:
        msgs = conversation_turns(row) or _wrapped(row, plan)
        if msgs is None:
            raise TuituneError("a row is not a conversation", fix="prepare the data again")
        if tokenizer is None:
            raise TuituneError("tokenizing a conversation needs the tokenizer")
        try:
            out = tokenize_conversation(msgs, tokenizer, plan, row.get("tools"))
        except TuituneError:
            raise
        except Exception as e:  # jinja's TemplateError, raise_exception() in the template
            raise template_error(e) from None
        plan.mismatched += out.pop("mismatch")
        return out
    if plan.data_format in ("prompt_completion", "unpaired_preference"):
        return {"prompt": row["prompt"], "completion": row["completion"]}
    return {"text": row["text"]}


def template_error(e: Exception) -> TuituneError:
    """A template that refuses a conversation (roles out of order, a role it does not know)."""
    return TuituneError(
        f"the chat template cannot render a conversation: {type(e).__name__}: {e}",
        fix="check the turn order and roles the model's template accepts (many allow only "
        "alternating user/assistant turns), or pick another model",
    )


def _trainer_rows(rows: list[dict[str, Any]], plan: LossPlan, tokenizer: Any) -> list[Any]:
    if plan.drop_undesirable:
        rows = [r for r in rows if r.get("label") is not False]
    return [to_trainer_row(r, plan, tokenizer) for r in rows]


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


# --- public entry points ------------------------------------------------------------------


def sft_trainer_inputs(spec: Any, tokenizer: Any) -> SFTInputs:
    """Datasets and SFTConfig arguments for ``spec`` (a TrainSpec): conversations tokenized
    with their per-turn assistant mask, other rows in TRL's standard form."""
    rows = read_jsonl(spec.train_file)
    eval_rows = read_jsonl(spec.eval_file) if spec.eval_file else []
    plan = plan_loss(
        spec.data_format,
        tokenizer,
        completion_only_loss=spec.completion_only_loss,
        rows=rows + eval_rows,
    )
    train = _dataset(_trainer_rows(rows, plan, tokenizer))
    evaluation = _dataset(_trainer_rows(eval_rows, plan, tokenizer)) if eval_rows else None
    if plan.mismatched:
        plan.notes.append(_mismatch_note(plan.mismatched))
    return SFTInputs(train, evaluation, plan.config_kwargs(spec.max_length), plan, list(plan.notes))


def _mismatch_note(n: int) -> str:
    return (
        f"{n} trained turns render differently alone than inside their conversation (the "
        "template rewrites earlier turns): each starts where the two renderings diverge"
    )


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
    if plan.drop_undesirable:
        rows = [r for r in rows if r.get("label") is not False]
    trainer_rows = [to_trainer_row(r, plan, tokenizer) for r in rows]
    if plan.mismatched:
        plan.notes.append(_mismatch_note(plan.mismatched))
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
