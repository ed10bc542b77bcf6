"""Cleaning steps applied to standard-form rows, each reporting what it changed.

Every step gets the list of ``Item`` (origin + row) and returns the items it keeps, filling
a ``StepReport`` with counts and a few before/after examples, so the wizard and
``tuitune data check`` can show *what* was done, not just that something was.

Steps, in order (each can be turned off in the ``curation`` dict, see ``DEFAULTS``):
``strip_html`` -> ``normalize_whitespace`` -> ``drop_broken`` -> ``pii`` -> ``dedup_exact``
-> ``dedup_near`` -> ``token_length``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tuitune.core.data import dedup, pii, stats
from tuitune.core.data.rows import Item, StepReport, map_text, row_text
from tuitune.core.errors import TuituneError

DEFAULTS: dict[str, Any] = {
    "strip_html": True,
    "normalize_whitespace": True,
    "drop_broken": True,
    "pii": "redact",  # "redact" | "drop" | "off"
    "dedup_exact": True,
    "dedup_near": True,
    "near_threshold": 0.85,  # estimated Jaccard similarity of word 5-gram shingles
    "token_length": True,  # drop rows longer than max_length tokens (needs a tokenizer)
    "min_completion_chars": 1,
    # Forgetting mitigation: {"share": 0.2, "file": ""} mixes general chat rows into the
    # training split (tuitune.core.data.mixture); applied by prepare_data, not by curate().
    "mix_general": None,
}
PII_MODES = ("redact", "drop", "off")


class CurationEmptyError(TuituneError):
    """Curation left no training rows; ``report`` says which steps removed them."""

    def __init__(self, report: CurationReport, **kwargs: Any) -> None:
        self.report = report
        drops = [f"{s.title}: {s.dropped}" for s in report.steps if s.dropped]
        super().__init__(
            f"no training rows left after curation ({report.rows_in} in; removed by "
            + ("; ".join(drops) or "the split")
            + ")",
            **kwargs,
        )


@dataclass
class CurationReport:
    """All steps, in order, with the row counts before and after."""

    rows_in: int = 0
    rows_out: int = 0
    steps: list[StepReport] = field(default_factory=list)

    def step(self, name: str) -> StepReport:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_config(curation: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS updated with the user's choices; unknown keys are refused (typos show)."""
    config = dict(DEFAULTS)
    for k, v in (curation or {}).items():
        if k not in DEFAULTS:
            raise TuituneError(
                f"unknown curation option {k!r}", fix=f"use one of {', '.join(DEFAULTS)}"
            )
        config[k] = v
    if config["pii"] is True:
        config["pii"] = "redact"
    if config["pii"] in (False, None):
        config["pii"] = "off"
    if config["pii"] not in PII_MODES:
        raise TuituneError(f"unknown PII mode {config['pii']!r}", fix="use redact, drop or off")
    return config


# --- text cleaning ----------------------------------------------------------------------------

_TAG = re.compile(
    r"</?(?:p|div|span|br|hr|b|i|u|em|strong|a|img|li|ul|ol|h[1-6]|table|tr|td|th|tbody|thead|"
    r"font|center|small|big|sup|sub|blockquote|pre|code|html|body|head|title|meta|link|"
    r"section|article|header|footer|nav|label|button|input|form|iframe|tt)\b[^<>]*?/?>",
    re.IGNORECASE,
)
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,10});")
_BLOCK_BREAK = re.compile(r"<(?:br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", re.IGNORECASE)


# Code is never stripped: fenced blocks and inline backticks are set aside first, and a text
# that still looks like code (a page, a script, JSX, statements ending in ; or {) is left
# whole, since "use the `<hr>` tag" or an HTML answer means the markup *is* the content.
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.DOTALL | re.M)
_INLINE = re.compile(r"(`+)[^`\n]+?\1")
_CODE_LIKE = re.compile(
    r"<!doctype|<html\b|<\?php|<script\b|<style\b|<template\b"
    r"|\bclass(?:Name)?=[\"'{]|\bonclick=|<[a-z][^<>]*\{\{",
    re.IGNORECASE,
)
_COMPONENT = re.compile(r"<[A-Z][a-z]+[A-Za-z]*[\s/>]")  # JSX / Vue components
_STATEMENT = re.compile(r"[;{}]\s*$", re.M)
_HOLD = "\ue000"


def looks_like_code(text: str) -> bool:
    """True for text that is code or a markup document rather than prose with stray tags."""
    if _CODE_LIKE.search(text) or _COMPONENT.search(text):
        return True
    return len(_STATEMENT.findall(text)) >= 2


def _markup_in_code(row: dict[str, Any]) -> bool:
    """True when a row has tags that stripping left alone because they are code."""
    text = row_text(row)
    return bool(_TAG.search(text)) and (looks_like_code(text) or "`" in text)


def set_aside_code(text: str) -> tuple[str, list[str]]:
    """``text`` with its fenced blocks and inline backtick spans replaced by placeholders,
    and the spans held aside (``restore_code`` puts them back). Cleaning steps work on the
    rest, so code keeps its markup and its spacing."""
    if "`" not in text and "~~~" not in text:
        return text, []
    held: list[str] = []

    def hold(m: re.Match[str]) -> str:
        held.append(m.group(0))
        return f"{_HOLD}{len(held) - 1}{_HOLD}"

    return _INLINE.sub(hold, _FENCE.sub(hold, text)), held


def restore_code(text: str, held: list[str]) -> str:
    """Put back the spans ``set_aside_code`` held."""
    if not held:
        return text
    return re.sub(f"{_HOLD}(\\d+){_HOLD}", lambda m: held[int(m.group(1))], text)


def strip_html(text: str) -> str:
    """Remove HTML tags, comments and entities from prose. Code is left alone: fenced
    blocks, inline backticks, angle brackets used as text (``a < b``, ``<T>`` in generics)
    and any text that looks like code (``looks_like_code``) are kept as written."""
    if "<" not in text and "&" not in text:
        return text
    if _HOLD in text:
        return text
    work, held = set_aside_code(text)
    if looks_like_code(work):
        return text
    out = _SCRIPT.sub("", work)
    out = _COMMENT.sub("", out)
    out = _BLOCK_BREAK.sub(lambda m: m.group(0) + "\n", out)
    out = _TAG.sub("", out)
    if _ENTITY.search(out):
        out = html.unescape(out)
    return restore_code(out, held)


_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_WS_WORK = re.compile(
    r"[ \t\u00a0\u2000-\u200b\u3000]{2,}|[ \t]\n|[\t\u00a0\u2000-\u200b\u3000]|\r|\n{3,}"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]|^\s|\s$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")


_JSON_OPEN = re.compile(r"[{\[]")
_JSON_MISSES = 64


def set_aside_json(text: str, held: list[str]) -> str:
    """``text`` with each JSON object or array in it (a tool call, tool arguments or a tool
    result, whole or inside prose) replaced by a placeholder and appended to ``held``."""
    if "{" not in text and "[" not in text:
        return text
    import json

    decoder = json.JSONDecoder()
    out: list[str] = []
    pos = 0
    misses = 0  # bounded, so a text of many stray brackets stays linear
    for m in _JSON_OPEN.finditer(text):
        if m.start() < pos:
            continue
        try:
            value, end = decoder.raw_decode(text, m.start())
        except RecursionError:
            break  # nested deeper than Python parses: no tool call looks like that
        except ValueError:
            misses += 1
            if misses > _JSON_MISSES:
                break
            continue
        if not isinstance(value, (dict, list)) or not value:
            continue
        held.append(text[m.start() : end])
        out.append(text[pos : m.start()] + f"{_HOLD}{len(held) - 1}{_HOLD}")
        pos = end
    return "".join(out) + text[pos:] if out else text


def _normalize_prose(text: str) -> str:
    out = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = []
    for line in out.split("\n"):
        indent = len(line) - len(line.lstrip(" \t"))
        lines.append(line[:indent] + _SPACES.sub(" ", line[indent:]).rstrip())
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def normalize_whitespace_code(text: str) -> tuple[str, bool]:
    """``normalize_whitespace`` and whether code or JSON in the text kept spacing that prose
    would have lost (for the curation report)."""
    if not _WS_WORK.search(text):
        return text, False  # the common case, checked with one regex instead of line by line
    if _HOLD in text:
        return text, False
    work, held = set_aside_code(text)
    if looks_like_code(work):
        return text, _normalize_prose(text) != text
    work = set_aside_json(work, held)
    out = restore_code(_normalize_prose(work), held)
    return out, bool(held) and _normalize_prose(text) != out


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces, trim line ends, keep at most one blank line, drop control
    characters; indentation at line starts is kept (code and YAML depend on it). Code is
    left alone as ``strip_html`` leaves it (fenced blocks, inline backticks, text that looks
    like code), and so is JSON (tool calls, their arguments and results), whose spacing may
    be part of a value."""
    return normalize_whitespace_code(text)[0]


def _whitespace_step(items: list[Item], step: StepReport) -> list[Item]:
    kept_rows = 0
    for item in items:
        kept = False

        def fn(text: str) -> str:
            nonlocal kept
            out, code = normalize_whitespace_code(text)
            kept = kept or code
            return out

        new = map_text(item.row, fn)
        kept_rows += kept
        if new != item.row:
            step.changed += 1
            step.example(item.origin, row_text(item.row), row_text(new))
            item.row = new
    step.details["kept_as_code"] = kept_rows
    return items


def _text_step(items: list[Item], step: StepReport, fn: Callable[[str], str]) -> list[Item]:
    for item in items:
        new = map_text(item.row, fn)
        if new != item.row:
            step.changed += 1
            step.example(item.origin, row_text(item.row), row_text(new))
            item.row = new
    return items


# --- structure ----------------------------------------------------------------------------


def broken_reason(row: dict[str, Any], fmt: str) -> str | None:
    """Why a standard-form row cannot train, or None when it can."""
    if fmt == "messages":
        msgs = row.get("messages") or []
        return _conversation_problem(msgs)
    if fmt in ("prompt_completion", "unpaired_preference"):
        completion = row.get("completion")
        if not row_text({"completion": completion}).strip():
            return "empty completion"
        if isinstance(completion, list) and not any(m["role"] == "assistant" for m in completion):
            return "completion has no assistant turn"
        if not row_text({"prompt": row.get("prompt")}).strip():
            return "empty prompt"
        return None
    if fmt == "preference":
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if not row_text({"chosen": chosen}).strip() or not row_text({"rejected": rejected}).strip():
            return "empty chosen or rejected answer"
        if chosen == rejected:
            return "chosen and rejected are identical"
        return None
    if fmt == "text":
        return None if str(row.get("text", "")).strip() else "empty text"
    if fmt == "input_output":
        segments = row.get("segments") or []
        if not "".join(s["text"] for s in segments).strip():
            return "empty segments"
        if not any(s["label"] and s["text"] for s in segments):
            return "no trained segment (every label is false)"
    return None


def _trained(m: dict[str, Any]) -> bool:
    """A turn carries loss: its weight when given, else assistant turns only."""
    return bool(m.get("weight", 1 if m["role"] == "assistant" else 0))


def _conversation_problem(msgs: list[dict[str, Any]]) -> str | None:
    if not msgs:
        return "empty conversation"
    turns = [m for m in msgs if m["role"] != "system"]
    if any(m["role"] == "system" for m in msgs[1:]):
        return "system message after the first turn"
    if not turns:
        return "only a system message"
    if turns[0]["role"] != "user":
        return f"first turn is {turns[0]['role']}, expected user"
    if not any(m["role"] == "assistant" for m in turns):
        return "no assistant turn"
    last_assistant = max(i for i, m in enumerate(turns) if m["role"] == "assistant")
    prev = None
    for m in turns:
        if m["role"] == prev and m["role"] in ("user", "assistant"):
            return f"two {m['role']} turns in a row"
        prev = m["role"]
    last = turns[last_assistant]
    if not last["content"].strip() and not last.get("tool_calls"):
        return "empty assistant answer"
    if last_assistant != len(turns) - 1:
        return f"ends with a {turns[-1]['role']} turn after the last answer"
    if not any(_trained(m) for m in turns):
        return "no trained turn (every assistant turn has weight 0)"
    if any(not m["content"].strip() for m in turns if m["role"] == "user"):
        return "empty user turn"
    return None


def _drop_broken(items: list[Item], fmt: str, step: StepReport) -> list[Item]:
    kept = []
    reasons: dict[str, int] = {}
    for item in items:
        reason = broken_reason(item.row, fmt)
        if reason is None:
            kept.append(item)
            continue
        step.dropped += 1
        reasons[reason] = reasons.get(reason, 0) + 1
        step.example(item.origin, row_text(item.row), reason=reason)
    step.details["reasons"] = reasons
    return kept


def _dedup_exact(items: list[Item], step: StepReport) -> list[Item]:
    import hashlib
    import json

    seen: dict[str, str] = {}
    kept = []
    for item in items:
        key = hashlib.blake2b(
            json.dumps(item.row, sort_keys=True, ensure_ascii=False).encode(), digest_size=16
        ).hexdigest()
        if key in seen:
            step.dropped += 1
            step.example(item.origin, row_text(item.row), reason=f"same as {seen[key]}")
            continue
        seen[key] = item.origin
        kept.append(item)
    return kept


# --- the pipeline ---------------------------------------------------------------------------


def curate(
    items: list[Item],
    fmt: str,
    curation: dict[str, Any] | None = None,
    *,
    tokenizer: Any = None,
    max_length: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Item], CurationReport]:
    """Run the curation steps on standard-form rows of format ``fmt`` (a DATA_FORMATS value).

    Items are modified in place (they are the pipeline's own copies, never the user's files).
    ``tokenizer`` (a transformers tokenizer) enables the token-length filter.
    """
    config = resolve_config(curation)
    report = CurationReport(rows_in=len(items))

    def begin(name: str, title: str, enabled: bool) -> StepReport:
        step = StepReport(name, title, enabled=bool(enabled))
        report.steps.append(step)
        if progress is not None and enabled:
            progress(title)
        return step

    # Axolotl's input_output segments are concatenated as written (spaces, newlines, <s> and
    # </s> are the user's): the text steps would change what trains.
    as_written = "segments are trained as written (Axolotl input_output)"
    text_steps = fmt != "input_output"
    step = begin("strip_html", "Strip HTML and markup", config["strip_html"] and text_steps)
    if step.enabled:
        items = _text_step(items, step, strip_html)
        step.details["kept_as_code"] = sum(1 for it in items if _markup_in_code(it.row))
    elif config["strip_html"]:
        step.details["skipped"] = as_written
    step = begin(
        "normalize_whitespace",
        "Normalise whitespace",
        config["normalize_whitespace"] and text_steps,
    )
    if step.enabled:
        items = _whitespace_step(items, step)
    elif config["normalize_whitespace"]:
        step.details["skipped"] = as_written
    step = begin("drop_broken", "Drop empty or role-broken rows", config["drop_broken"])
    if step.enabled:
        items = _drop_broken(items, fmt, step)
    step = begin("pii", f"PII ({config['pii']})", config["pii"] != "off")
    if step.enabled:
        items = pii.pii_step(items, step, mode=config["pii"])
    step = begin("dedup_exact", "Exact duplicates", config["dedup_exact"])
    if step.enabled:
        items = _dedup_exact(items, step)
    step = begin("dedup_near", "Near duplicates (MinHash LSH)", config["dedup_near"])
    if step.enabled:
        items = dedup.near_dedup_step(items, step, threshold=float(config["near_threshold"]))
    can_measure = tokenizer is not None and max_length is not None
    step = begin("token_length", "Token length", config["token_length"] and can_measure)
    if step.enabled:
        items = stats.token_length_step(items, fmt, step, tokenizer, int(max_length or 0))
    elif config["token_length"]:
        step.details["skipped"] = "no tokenizer or max_length given"
    report.rows_out = len(items)
    return items, report
