"""Detect the format of fine-tuning rows and convert them to TRL's standard forms.

Source formats (what people have on disk) map onto the five forms tuitune trains from
(``TrainSpec.DATA_FORMATS``):

========================  ======================================================  ====================
source format             recognised by                                           converted to
========================  ======================================================  ====================
``alpaca``                instruction + output (input, system, history optional)  ``messages``
``sharegpt``              conversations / messages of from+value (or role+content) ``messages``
``messages``              messages of role+content (OpenAI chat format)           ``messages``
``prompt_completion``     prompt + completion (strings or message lists)          ``prompt_completion``
``text``                  text (``.txt`` files: one document per block or line)   ``text``
``preference``            chosen + rejected (prompt optional: implicit); also     ``preference``
                          sharegpt conversations + chosen/rejected turn objects
                          and chosen_messages / rejected_messages
``unpaired_preference``   completion or a conversation + a true/false label (KTO) ``unpaired_preference``
``input_output``          segments of label + text (Axolotl's template-free)      ``input_output``
========================  ======================================================  ====================

``input_output`` rows are ``{"segments": [{"label": true|false, "text": "..."}]}``: the texts are
concatenated as written (no chat template, no special tokens: BOS, EOS, spaces and newlines
are the user's), and the segments labelled true are trained.

What is kept, beyond role and text: ``tools`` (a JSON schema list, or a JSON string of one),
assistant ``tool_calls`` (OpenAI), ShareGPT ``function_call`` / ``observation`` turns (as
tool calls and ``tool`` turns), content parts with their text under ``text`` or ``value``,
reasoning parts (written as ``<think>...</think>`` before the answer, LLaMA-Factory's
convention), and per-turn weights (OpenAI ``weight``, LLaMA-Factory ``loss_weight``, Axolotl
``training``/``train``) as ``"weight"`` on the turn when it differs from the default (assistant
turns trained, others not). Everything else a row carries (images, audio, unknown columns or
turn keys) is counted in ``notes`` so the caller can name it: nothing is dropped silently.

Detection is per row, then by majority over a sample, so a file that mixes formats is named
as such instead of failing on row 4,000 with ``KeyError: 'instruction'``.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SOURCE_FORMATS = (
    "alpaca",
    "sharegpt",
    "messages",
    "prompt_completion",
    "text",
    "preference",
    "unpaired_preference",
    "input_output",
)

TARGET_OF = {
    "alpaca": "messages",
    "sharegpt": "messages",
    "messages": "messages",
    "prompt_completion": "prompt_completion",
    "text": "text",
    "preference": "preference",
    "unpaired_preference": "unpaired_preference",
    "input_output": "input_output",
}

# Column names typical of each format, used to name the nearest format of an unknown schema.
_TYPICAL_COLUMNS = {
    "alpaca": ("instruction", "input", "output", "system", "history"),
    "sharegpt": ("conversations", "conversation", "from", "value", "dialog", "chat"),
    "messages": ("messages", "role", "content", "chat", "dialogue"),
    "prompt_completion": (
        "prompt",
        "completion",
        "question",
        "answer",
        "response",
        "query",
        "target",
        "source",
    ),
    "text": ("text", "content", "body", "document", "passage"),
    "preference": ("prompt", "chosen", "rejected", "accepted", "preferred", "dispreferred"),
    "unpaired_preference": ("prompt", "completion", "label", "kto_label", "desirable"),
    "input_output": ("segments", "segment", "label", "text"),
}

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "function_call": "assistant",
}
ROLES = ("system", "user", "assistant", "tool")
CHAT_KEYS = ("conversations", "messages", "conversation")
MULTIMODAL_COLUMNS = ("images", "image", "videos", "video", "audios", "audio")
_LABELS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def parse_label(value: Any) -> bool | None:
    """A KTO label: a boolean, or true/false, yes/no, 1/0 as text or number; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _LABELS.get(value.strip().lower())
    return None


class RowError(ValueError):
    """A row that cannot be converted; the message says why (the caller adds file and line)."""


@dataclass(frozen=True)
class FormatGuess:
    """The detected format of a data set, with how sure we are and why.

    ``name`` is a source format (``SOURCE_FORMATS``) or ``"unknown"``; ``target`` is the
    ``TrainSpec.DATA_FORMATS`` value the rows convert to (empty when unknown). ``counts`` is the
    number of sampled rows per detected format, so ``mixed`` lists formats other than the
    majority. For an unknown schema, ``nearest`` names the closest supported format and
    ``sample`` is one row to show next to it.
    """

    name: str
    target: str
    confidence: float
    reason: str
    columns: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    mixed: list[str] = field(default_factory=list)
    nearest: str = ""
    sample: dict[str, Any] | None = None

    @property
    def known(self) -> bool:
        return self.name in SOURCE_FORMATS


def _is_message_list(value: Any, keys: tuple[str, str]) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and isinstance(value[0], dict)
        and keys[0] in value[0]
        and (keys[1] in value[0] or "tool_calls" in value[0])
    )


def _is_chat(value: Any) -> bool:
    return _is_message_list(value, ("role", "content"))


def _is_segments(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and isinstance(value[0], dict)
        and "text" in value[0]
        and "label" in value[0]
    )


def detect_row(row: dict[str, Any]) -> str | None:
    """The source format of one row, or None when no supported format fits."""
    if not isinstance(row, dict):
        return None
    keys = row.keys()
    if ("chosen" in keys and "rejected" in keys) or (
        "chosen_messages" in keys and "rejected_messages" in keys
    ):
        return "preference"
    label_key = "label" if "label" in keys else ("kto_tag" if "kto_tag" in keys else None)
    if (
        label_key is not None
        and parse_label(row[label_key]) is not None
        and ("completion" in keys or any(k in keys for k in CHAT_KEYS))
    ):
        return "unpaired_preference"
    for key in CHAT_KEYS:
        if key in keys:
            value = row[key]
            if _is_message_list(value, ("from", "value")):
                return "sharegpt"
            if _is_chat(value):
                return "sharegpt" if key != "messages" else "messages"
    if _is_segments(row.get("segments")):
        return "input_output"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion"
    if "text" in keys and isinstance(row.get("text"), str):
        return "text"
    return None


_REASONS = {
    "alpaca": "'instruction' and 'output' columns (alpaca)",
    "sharegpt": "conversations of from/value turns (sharegpt)",
    "messages": "'messages' lists of role/content turns (OpenAI chat)",
    "prompt_completion": "'prompt' and 'completion' columns",
    "text": "a 'text' column",
    "preference": "'chosen' and 'rejected' columns (preference pairs)",
    "unpaired_preference": "an answer with a true/false 'label' (unpaired preference, KTO)",
    "input_output": "'segments' of label/text (Axolotl input_output, template-free)",
}


def detect_format(rows: Sequence[dict[str, Any]] | Iterable[dict[str, Any]]) -> FormatGuess:
    """Detect the format of a sample of rows (the caller chooses the sample, e.g. 500 rows)."""
    rows = list(rows)
    columns: list[str] = []
    seen: set[str] = set()
    for row in rows:
        if isinstance(row, dict):
            for k in row:
                if k not in seen:
                    seen.add(k)
                    columns.append(k)
    counts = Counter(detect_row(r) or "unknown" for r in rows)
    if not rows:
        return FormatGuess("unknown", "", 0.0, "no rows to look at", columns)
    known = Counter({k: v for k, v in counts.items() if k != "unknown"})
    if not known:
        nearest = nearest_format(columns)
        return FormatGuess(
            "unknown",
            "",
            0.0,
            f"no supported format matches the columns {', '.join(columns) or '(none)'}; "
            f"nearest is {nearest} ({_REASONS[nearest]})",
            columns,
            dict(counts),
            nearest=nearest,
            sample=rows[0] if isinstance(rows[0], dict) else {"value": rows[0]},
        )
    name, hits = known.most_common(1)[0]
    confidence = hits / len(rows)
    mixed = sorted(k for k in counts if k != name)
    reason = f"{hits}/{len(rows)} sampled rows have {_REASONS[name]}"
    if mixed:
        others = ", ".join(f"{counts[k]} {k}" for k in mixed)
        reason += f"; others: {others}"
    return FormatGuess(name, TARGET_OF[name], confidence, reason, columns, dict(counts), mixed)


def nearest_format(columns: Iterable[str]) -> str:
    """The supported format whose typical column names best match ``columns``."""
    cols = [c.lower() for c in columns]
    best, best_score = "messages", -1.0
    for name, typical in _TYPICAL_COLUMNS.items():
        score = 0.0
        for c in cols:
            ratios = [difflib.SequenceMatcher(None, c, t).ratio() for t in typical]
            score += max(ratios) if max(ratios) >= 0.6 else 0.0
        if score > best_score:
            best, best_score = name, score
    return best


# --- conversion -----------------------------------------------------------------------------

# Keys of a turn that conversion reads; any other key is named in the notes.
_TURN_KEYS = {
    "role",
    "from",
    "content",
    "value",
    "tool_calls",
    "function_call",
    "tool_call_id",
    "reasoning_content",
    "thinking",
    *("weight", "loss_weight", "training", "train"),
}
_TEXT_PARTS = {"text", "input_text", "output_text"}
_REASONING_PARTS = {"reasoning", "thinking"}
_MEDIA_PARTS = {
    "image": "image",
    "image_url": "image",
    "input_image": "image",
    "audio": "audio",
    "input_audio": "audio",
    "audio_url": "audio",
    "video": "video",
    "video_url": "video",
    "file": "file",
}
Notes = dict[str, int]
# Notices that say what was kept (and how); every other notice names something not trained.
KEPT_PREFIXES = ("tool calls:", "tool results:", "tools:", "reasoning parts:")


def is_kept_notice(message: str) -> bool:
    """True for a notice about data that is kept (tool turns, reasoning), not dropped."""
    return message.startswith(KEPT_PREFIXES)


def _note(notes: Notes | None, message: str) -> None:
    """Count one row's notice (the caller dedupes per row through ``_RowNotes``)."""
    if notes is not None:
        notes[message] = notes.get(message, 0) + 1


class _RowNotes:
    """Collects a row's notices once each, then adds them to the file-wide counts."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def add(self, message: str) -> None:
        self.seen.add(message)

    def flush(self, notes: Notes | None) -> None:
        for message in self.seen:
            _note(notes, message)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _scalar_text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if _is_nan(value):
        raise RowError(f"{what} is NaN (an empty or missing cell)")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"{what} is a {type(value).__name__}, expected text")


def _parts(
    value: Any, what: str, rn: _RowNotes | None = None
) -> tuple[str, list[str], list[dict[str, Any]]]:
    """Content as (text, reasoning parts, tool calls): a string, or content parts
    ``[{"type": "text", "text"|"value": ...}]`` (OpenAI, LLaMA-Factory v1)."""
    if not isinstance(value, list):
        return _scalar_text(value, what), [], []
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(value):
        if isinstance(part, str):
            text.append(part)
            continue
        if not isinstance(part, dict):
            raise RowError(f"{what}[{j}] is a {type(part).__name__}, expected a content part")
        kind = str(part.get("type", "text"))
        body = part.get("text", part.get("value", part.get(kind)))
        if kind in _TEXT_PARTS:
            text.append(_scalar_text(body, f"{what}[{j}]"))
        elif kind in _REASONING_PARTS:
            reasoning.append(_scalar_text(body, f"{what}[{j}]"))
        elif kind == "tool_call":
            calls.extend(_tool_calls(body, f"{what}[{j}]"))
        elif kind in _MEDIA_PARTS and rn is not None:
            rn.add(
                f"{_MEDIA_PARTS[kind]} content parts: dropped (tuitune trains text-only models; "
                "the text parts are kept)"
            )
        elif rn is not None:
            rn.add(f"content parts of type {kind!r}: dropped (not text)")
    return "".join(text), reasoning, calls


def _text(value: Any, what: str, rn: _RowNotes | None = None) -> str:
    """Content as a string: plain strings, or content parts with their text under text/value."""
    text, reasoning, calls = _parts(value, what, rn)
    if calls:
        raise RowError(f"{what} holds tool calls where text is expected")
    return _with_reasoning(text, reasoning, rn)


def _with_reasoning(text: str, reasoning: list[str], rn: _RowNotes | None) -> str:
    if not reasoning:
        return text
    if rn is not None:
        rn.add("reasoning parts: written as <think>...</think> before the answer (trained)")
    return "<think>\n" + "\n".join(reasoning).strip() + "\n</think>\n\n" + text


def _tool_call(call: Any, what: str) -> dict[str, Any]:
    """One tool call in the form chat templates take: {"type": "function", "function":
    {"name", "arguments": {...}}} (arguments as an object, transformers' convention)."""
    if isinstance(call, str):
        try:
            call = json.loads(call)
        except (json.JSONDecodeError, RecursionError):
            raise RowError(f"{what} is not a JSON tool call ({{name, arguments}})") from None
    if not isinstance(call, dict):
        raise RowError(f"{what} is a {type(call).__name__}, expected a tool call object")
    fn = call.get("function", call)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise RowError(f"{what} has no function name")
    args = fn.get("arguments", fn.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            raise RowError(f"{what}.arguments is not valid JSON") from None
    out: dict[str, Any] = {"type": "function", "function": {"name": fn["name"], "arguments": args}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def _tool_calls(value: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise RowError(f"{what} is not a JSON tool call ({{name, arguments}})") from None
    items = value if isinstance(value, list) else [value]
    return [_tool_call(c, f"{what}[{i}]") for i, c in enumerate(items)]


def parse_tools(value: Any, what: str = "tools") -> list[dict[str, Any]] | None:
    """Tool definitions as OpenAI/transformers take them: [{"type": "function", "function":
    {name, description, parameters}}]; glaive-style bare schemas and JSON strings are wrapped."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise RowError(f"{what} is not valid JSON (expected a list of tool schemas)") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowError(f"{what} is a {type(value).__name__}, expected a list of tool schemas")
    out = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise RowError(f"{what}[{i}] is a {type(tool).__name__}, expected a tool schema")
        if isinstance(tool.get("function"), dict):
            out.append({"type": tool.get("type", "function"), "function": tool["function"]})
        elif isinstance(tool.get("name"), str):
            out.append({"type": "function", "function": tool})
        else:
            raise RowError(f"{what}[{i}] has no function name")
    return out or None


def _weight(m: dict[str, Any], what: str, rn: _RowNotes | None) -> float | None:
    for key in ("weight", "loss_weight", "training", "train"):
        if key in m and m[key] is not None:
            w = m[key]
            if isinstance(w, bool):
                return 1.0 if w else 0.0
            if isinstance(w, (int, float)) and not _is_nan(w) and w >= 0:
                if 0 < w < 1 and rn is not None:
                    rn.add(
                        "fractional turn weights: trained as weight 1 (TRL's loss has no "
                        "per-token weights)"
                    )
                return float(w)
            raise RowError(f"{what}.{key} is {w!r}, expected a number >= 0 or true/false")
    return None


def _message(
    m: Any, what: str, *, from_value: bool = False, rn: _RowNotes | None = None
) -> dict[str, Any]:
    """One turn in standard form: role, content (text), and where present tool_calls,
    tool_call_id, name (tool turns) and weight (when it differs from the role's default)."""
    if not isinstance(m, dict):
        raise RowError(f"{what} is a {type(m).__name__}, expected an object")
    if "role" in m:
        raw_role, content = m.get("role"), m.get("content")
    elif "from" in m:
        raw_role, content = m.get("from"), m.get("value")
    else:
        raise RowError(f"{what} has no 'role' (or 'from') key")
    role_key = str(raw_role).strip().lower()
    role = (
        SHAREGPT_ROLES.get(role_key, role_key) if from_value or role_key not in ROLES else role_key
    )
    if role not in ROLES:
        raise RowError(
            f"{what} has role {raw_role!r}; expected one of {', '.join(ROLES)}"
            " (or human/gpt/function_call/observation)"
        )
    calls: list[dict[str, Any]] = []
    if role_key == "function_call":  # ShareGPT: the turn's value is the call itself
        calls = _tool_calls(content, f"{what}.value")
        text, reasoning = "", []
    else:
        text, reasoning, calls = _parts(content, f"{what}.content", rn)
    if m.get("tool_calls"):
        calls += _tool_calls(m["tool_calls"], f"{what}.tool_calls")
    if m.get("function_call"):  # OpenAI's legacy single call
        calls += _tool_calls(m["function_call"], f"{what}.function_call")
    for key in ("reasoning_content", "thinking"):
        if isinstance(m.get(key), str) and m[key].strip():
            reasoning.insert(0, m[key])
    out: dict[str, Any] = {"role": role, "content": _with_reasoning(text, reasoning, rn)}
    if calls:
        if role != "assistant":
            raise RowError(f"{what} is a {role} turn with tool calls (only assistants call tools)")
        out["tool_calls"] = calls
        if rn is not None:
            rn.add("tool calls: kept and rendered by the chat template (trained)")
    if role == "tool":
        for key in ("tool_call_id", "name"):
            if isinstance(m.get(key), str):
                out[key] = m[key]
        if rn is not None:
            rn.add("tool results: kept as tool turns (context, not trained)")
    weight = _weight(m, what, rn)
    default = 1.0 if role == "assistant" else 0.0
    if weight is not None and (weight > 0) != (default > 0):
        out["weight"] = 1 if weight > 0 else 0
    for key in m:
        if key not in _TURN_KEYS and not (role == "tool" and key == "name") and rn is not None:
            rn.add(f"turn key {key!r}: not used")
    return out


def _chat(
    messages: Any, what: str, *, from_value: bool = False, rn: _RowNotes | None = None
) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise RowError(f"{what} is a {type(messages).__name__}, expected a list of turns")
    return [
        _message(m, f"{what}[{i}]", from_value=from_value, rn=rn) for i, m in enumerate(messages)
    ]


def _with_tools(out: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    tools = parse_tools(row.get("tools"))
    if tools:
        out["tools"] = tools
    return out


def _alpaca(row: dict[str, Any], rn: _RowNotes) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = _text(row.get("system"), "system", rn)
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowError("history is not a list of [question, answer] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowError(f"history[{i}] is not a [question, answer] pair")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{i}][0]", rn)})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{i}][1]", rn)})
    instruction = _text(row.get("instruction"), "instruction", rn)
    extra = _text(row.get("input"), "input", rn)
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": _text(row.get("output"), "output", rn)})
    return _with_tools({"messages": messages}, row)


def _chat_key(row: dict[str, Any]) -> str:
    return next(k for k in CHAT_KEYS if k in row)


def _system_first(messages: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    system = row.get("system")
    if (
        isinstance(system, str)
        and system.strip()
        and (not messages or messages[0]["role"] != "system")
    ):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _sharegpt(row: dict[str, Any], rn: _RowNotes) -> dict[str, Any]:
    key = _chat_key(row)
    messages = _system_first(_chat(row[key], key, from_value=True, rn=rn), row)
    return _with_tools({"messages": messages}, row)


def _prompt_or_chat(value: Any, what: str, rn: _RowNotes | None = None) -> Any:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) for v in value)
        and any("role" in v or "from" in v for v in value)
    ):
        return _chat(value, what, from_value=True, rn=rn)
    if isinstance(value, dict) and ("role" in value or "from" in value):
        return [_message(value, what, from_value=True, rn=rn)]  # LLaMA-Factory: one turn object
    return _text(value, what, rn)


def _as_chat(value: Any, role: str) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def _unweighted(value: Any, rn: _RowNotes) -> Any:
    """Preference pairs have no per-turn weights: drop them (and say so)."""
    if isinstance(value, list):
        if any("weight" in m for m in value):
            rn.add("per-turn weights in preference pairs: ignored (the whole answer is compared)")
        return [{k: v for k, v in m.items() if k != "weight"} for m in value]
    return value


def _preference(row: dict[str, Any], rn: _RowNotes) -> dict[str, Any]:
    if "chosen_messages" in row and "chosen" not in row:
        row = {**row, "chosen": row["chosen_messages"], "rejected": row["rejected_messages"]}
    chosen = _unweighted(_prompt_or_chat(row["chosen"], "chosen", rn), rn)
    rejected = _unweighted(_prompt_or_chat(row["rejected"], "rejected", rn), rn)
    prompt: Any = None
    if row.get("prompt") is not None:
        prompt = _prompt_or_chat(row["prompt"], "prompt", rn)
    elif any(k in row for k in CHAT_KEYS):
        key = _chat_key(row)
        prompt = _system_first(_chat(row[key], key, from_value=True, rn=rn), row)
    elif row.get("instruction") is not None:  # LLaMA-Factory alpaca ranking
        extra = _text(row.get("input"), "input", rn)
        instruction = _text(row["instruction"], "instruction", rn)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    if isinstance(chosen, list) != isinstance(rejected, list):
        chosen, rejected = _as_chat(chosen, "assistant"), _as_chat(rejected, "assistant")
    if prompt is not None and isinstance(prompt, list) != isinstance(chosen, list):
        prompt = _as_chat(prompt, "user")
        chosen, rejected = _as_chat(chosen, "assistant"), _as_chat(rejected, "assistant")
    out: dict[str, Any] = {"chosen": chosen, "rejected": rejected}
    if prompt is not None:
        return {"prompt": _unweighted(prompt, rn), **out}
    # Implicit prompt: the longest shared prefix of chosen and rejected (TRL's own rule).
    from trl.data_utils import extract_prompt

    extracted = extract_prompt(out)
    if not extracted["prompt"]:
        raise RowError("no prompt: 'chosen' and 'rejected' share no leading turns or text")
    return dict(extracted)


def _unpaired(row: dict[str, Any], rn: _RowNotes) -> dict[str, Any]:
    key = "label" if "label" in row else "kto_tag"
    label = parse_label(row.get(key))
    if label is None:
        raise RowError(f"{key} is {row.get(key)!r}, expected true or false")
    if "completion" in row:
        prompt = _prompt_or_chat(row.get("prompt", ""), "prompt", rn)
        completion = _prompt_or_chat(row["completion"], "completion", rn)
        if isinstance(prompt, list) != isinstance(completion, list):
            prompt, completion = _as_chat(prompt, "user"), _as_chat(completion, "assistant")
    else:  # a conversation whose final assistant turn is the judged answer (LLaMA-Factory)
        chat_key = _chat_key(row)
        msgs = _system_first(_chat(row[chat_key], chat_key, from_value=True, rn=rn), row)
        if not msgs or msgs[-1]["role"] != "assistant":
            raise RowError(f"{chat_key} does not end with the assistant answer the label judges")
        prompt, completion = msgs[:-1], msgs[-1:]
    return {"prompt": prompt, "completion": completion, "label": label}


# The columns each converter reads; anything else a row has is named in the notes.
_READS = {
    "alpaca": {"instruction", "input", "output", "system", "history", "tools"},
    "sharegpt": {*CHAT_KEYS, "system", "tools"},
    "messages": {"messages", "tools"},
    "prompt_completion": {"prompt", "completion", "tools"},
    "text": {"text"},
    "preference": {
        "prompt",
        "chosen",
        "rejected",
        "chosen_messages",
        "rejected_messages",
        *CHAT_KEYS,
        "system",
        "instruction",
        "input",
    },
    "unpaired_preference": {"prompt", "completion", "label", "kto_tag", *CHAT_KEYS, "system"},
    "input_output": {"segments"},
}


def _column_notes(row: dict[str, Any], source: str, rn: _RowNotes) -> None:
    for key in row:
        if key in _READS.get(source, ()):
            continue
        if key in MULTIMODAL_COLUMNS:
            if row[key]:
                rn.add(
                    f"column {key!r}: dropped (tuitune trains text-only models; the text is "
                    "trained without the media)"
                )
        else:
            rn.add(f"column {key!r}: not used for training")
    if source in ("preference", "unpaired_preference") and row.get("tools"):
        rn.add("column 'tools': not used for preference data")


def _segments(row: dict[str, Any], rn: _RowNotes) -> dict[str, Any]:
    """Axolotl's input_output row: each segment's label (true: trained) and text, as written."""
    segments = row.get("segments")
    if not isinstance(segments, list) or not segments:
        raise RowError("segments is not a list of {label, text} objects")
    out = []
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict):
            raise RowError(f"segments[{i}] is a {type(seg).__name__}, expected {{label, text}}")
        if "text" not in seg:
            raise RowError(f"segments[{i}] has no 'text'")
        label = parse_label(seg.get("label"))
        if label is None:
            raise RowError(f"segments[{i}].label is {seg.get('label')!r}, expected true or false")
        out.append({"label": label, "text": _scalar_text(seg["text"], f"segments[{i}].text")})
        for key in seg:
            if key not in ("label", "text"):
                rn.add(f"segment key {key!r}: not used")
    return {"segments": out}


def _convert(row: dict[str, Any], source: str, rn: _RowNotes) -> dict[str, Any]:
    if source == "input_output":
        if "segments" not in row:
            raise RowError("input_output row without 'segments'")
        return _segments(row, rn)
    if source == "alpaca":
        if "instruction" not in row or "output" not in row:
            raise RowError("alpaca row without 'instruction' and 'output'")
        return _alpaca(row, rn)
    if source == "sharegpt":
        if not any(k in row for k in CHAT_KEYS):
            raise RowError("sharegpt row without 'conversations'")
        return _sharegpt(row, rn)
    if source == "messages":
        if "messages" not in row:
            raise RowError("row without 'messages'")
        return _with_tools({"messages": _chat(row["messages"], "messages", rn=rn)}, row)
    if source == "prompt_completion":
        if "prompt" not in row or "completion" not in row:
            raise RowError("row without 'prompt' and 'completion'")
        prompt = _prompt_or_chat(row["prompt"], "prompt", rn)
        completion = _prompt_or_chat(row["completion"], "completion", rn)
        if isinstance(prompt, list) != isinstance(completion, list):
            raise RowError("prompt and completion mix a conversation with plain text")
        out = {"prompt": prompt, "completion": completion}
        return _with_tools(out, row) if isinstance(prompt, list) else out
    if source == "text":
        if "text" not in row:
            raise RowError("row without 'text'")
        return {"text": _text(row["text"], "text", rn)}
    if source == "preference":
        if not (
            ("chosen" in row and "rejected" in row)
            or ("chosen_messages" in row and "rejected_messages" in row)
        ):
            raise RowError("row without 'chosen' and 'rejected'")
        return _preference(row, rn)
    if source == "unpaired_preference":
        has_label = parse_label(row.get("label", row.get("kto_tag"))) is not None
        if not has_label or not ("completion" in row or any(k in row for k in CHAT_KEYS)):
            raise RowError(
                "row without a true/false 'label' and a 'completion' (or a conversation)"
            )
        return _unpaired(row, rn)
    raise RowError(f"unknown format {source!r}")


def convert_row(row: dict[str, Any], source: str, notes: Notes | None = None) -> dict[str, Any]:
    """Convert one row from ``source`` format to its standard form; RowError when it cannot.

    ``notes`` (message -> rows) counts what the row carried that is not trained as text:
    tool turns, dropped media, unused columns or turn keys, reasoning parts, weights.
    """
    if not isinstance(row, dict):
        raise RowError(f"row is a {type(row).__name__}, expected an object")
    rn = _RowNotes()
    try:
        out = _convert(row, source, rn)
    except KeyError as e:  # defensive: every key is checked above
        raise RowError(f"missing key {e}") from None
    except RecursionError:
        raise RowError("row is nested too deeply") from None
    _column_notes(row, source, rn)
    if out.get("tools"):
        rn.add("tools: kept and rendered by the chat template (the model sees the definitions)")
    rn.flush(notes)
    return out
