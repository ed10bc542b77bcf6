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
``text``                  text                                                    ``text``
``preference``            chosen + rejected (prompt optional: implicit)           ``preference``
``unpaired_preference``   prompt + completion + boolean label (KTO)               ``unpaired_preference``
========================  ======================================================  ====================

Detection is per row, then by majority over a sample, so a file that mixes formats is named
as such instead of failing on row 4,000 with ``KeyError: 'instruction'``.
"""

from __future__ import annotations

import difflib
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
)

TARGET_OF = {
    "alpaca": "messages",
    "sharegpt": "messages",
    "messages": "messages",
    "prompt_completion": "prompt_completion",
    "text": "text",
    "preference": "preference",
    "unpaired_preference": "unpaired_preference",
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
        and keys[1] in value[0]
    )


def _is_chat(value: Any) -> bool:
    return _is_message_list(value, ("role", "content"))


def detect_row(row: dict[str, Any]) -> str | None:
    """The source format of one row, or None when no supported format fits."""
    if not isinstance(row, dict):
        return None
    keys = row.keys()
    if "chosen" in keys and "rejected" in keys:
        return "preference"
    if "completion" in keys and "label" in keys and isinstance(row.get("label"), bool):
        return "unpaired_preference"
    for key in ("conversations", "messages", "conversation"):
        if key in keys:
            value = row[key]
            if _is_message_list(value, ("from", "value")):
                return "sharegpt"
            if _is_chat(value):
                return "sharegpt" if key != "messages" else "messages"
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
    "unpaired_preference": "'completion' with a boolean 'label' (unpaired preference, KTO)",
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


def _text(value: Any, what: str) -> str:
    """Content as a string: plain strings, or OpenAI content parts [{type: text, text: ...}]."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        parts = [p.get("text", "") for p in value if p.get("type", "text") == "text"]
        return "".join(str(p) for p in parts)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"{what} is a {type(value).__name__}, expected text")


def _chat(messages: Any, what: str, *, from_value: bool = False) -> list[dict[str, str]]:
    if not isinstance(messages, list):
        raise RowError(f"{what} is a {type(messages).__name__}, expected a list of turns")
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RowError(f"{what}[{i}] is a {type(m).__name__}, expected an object")
        if "role" in m:
            raw_role, content = m.get("role"), m.get("content")
        elif "from" in m:
            raw_role, content = m.get("from"), m.get("value")
        else:
            raise RowError(f"{what}[{i}] has no 'role' (or 'from') key")
        role = str(raw_role).strip().lower()
        role = SHAREGPT_ROLES.get(role, role) if from_value or role not in ROLES else role
        if role not in ROLES:
            raise RowError(
                f"{what}[{i}] has role {raw_role!r}; expected one of {', '.join(ROLES)}"
                " (or human/gpt)"
            )
        out.append({"role": role, "content": _text(content, f"{what}[{i}].content")})
    return out


def _alpaca(row: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    system = _text(row.get("system"), "system")
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowError("history is not a list of [question, answer] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowError(f"history[{i}] is not a [question, answer] pair")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{i}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{i}][1]")})
    instruction = _text(row.get("instruction"), "instruction")
    extra = _text(row.get("input"), "input")
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": _text(row.get("output"), "output")})
    return {"messages": messages}


def _sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    key = next(k for k in ("conversations", "messages", "conversation") if k in row)
    messages = _chat(row[key], key, from_value=True)
    system = row.get("system")
    if (
        isinstance(system, str)
        and system.strip()
        and (not messages or messages[0]["role"] != "system")
    ):
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _prompt_or_chat(value: Any, what: str) -> str | list[dict[str, str]]:
    if isinstance(value, list):
        return _chat(value, what)
    return _text(value, what)


def _preference(row: dict[str, Any]) -> dict[str, Any]:
    chosen = _prompt_or_chat(row["chosen"], "chosen")
    rejected = _prompt_or_chat(row["rejected"], "rejected")
    if isinstance(chosen, list) != isinstance(rejected, list):
        raise RowError("chosen and rejected mix a conversation with plain text")
    out: dict[str, Any] = {"chosen": chosen, "rejected": rejected}
    if "prompt" in row and row["prompt"] is not None:
        prompt = _prompt_or_chat(row["prompt"], "prompt")
        if isinstance(prompt, list) == isinstance(chosen, list):
            return {"prompt": prompt, **out}
    # Implicit prompt: the longest shared prefix of chosen and rejected (TRL's own rule).
    from trl.data_utils import extract_prompt

    extracted = extract_prompt(out)
    if not extracted["prompt"]:
        raise RowError("no prompt: 'chosen' and 'rejected' share no leading turns or text")
    return dict(extracted)


def _unpaired(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": _prompt_or_chat(row.get("prompt", ""), "prompt"),
        "completion": _prompt_or_chat(row["completion"], "completion"),
        "label": bool(row["label"]),
    }


def convert_row(row: dict[str, Any], source: str) -> dict[str, Any]:
    """Convert one row from ``source`` format to its standard form; RowError when it cannot."""
    if not isinstance(row, dict):
        raise RowError(f"row is a {type(row).__name__}, expected an object")
    try:
        if source == "alpaca":
            if "instruction" not in row or "output" not in row:
                raise RowError("alpaca row without 'instruction' and 'output'")
            return _alpaca(row)
        if source == "sharegpt":
            if not any(k in row for k in ("conversations", "messages", "conversation")):
                raise RowError("sharegpt row without 'conversations'")
            return _sharegpt(row)
        if source == "messages":
            if "messages" not in row:
                raise RowError("row without 'messages'")
            return {"messages": _chat(row["messages"], "messages")}
        if source == "prompt_completion":
            if "prompt" not in row or "completion" not in row:
                raise RowError("row without 'prompt' and 'completion'")
            prompt = _prompt_or_chat(row["prompt"], "prompt")
            completion = _prompt_or_chat(row["completion"], "completion")
            if isinstance(prompt, list) != isinstance(completion, list):
                raise RowError("prompt and completion mix a conversation with plain text")
            return {"prompt": prompt, "completion": completion}
        if source == "text":
            if "text" not in row:
                raise RowError("row without 'text'")
            return {"text": _text(row["text"], "text")}
        if source == "preference":
            if "chosen" not in row or "rejected" not in row:
                raise RowError("row without 'chosen' and 'rejected'")
            return _preference(row)
        if source == "unpaired_preference":
            if "completion" not in row or not isinstance(row.get("label"), bool):
                raise RowError("row without 'completion' and a true/false 'label'")
            return _unpaired(row)
    except KeyError as e:  # defensive: every key is checked above
        raise RowError(f"missing key {e}") from None
    raise RowError(f"unknown format {source!r}")


def is_conversational(row: dict[str, Any]) -> bool:
    """True when a standard-form row holds message lists (TRL's definition)."""
    for key in ("messages", "prompt", "completion", "chosen", "rejected"):
        if key in row:
            return _is_chat(row[key])
    return False
