"""A row in curation and what a step reports of it: ``Item``, ``StepReport`` and the text
helpers every curation step shares (``row_text``, ``map_text``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_EXAMPLES = 3
_SNIPPET = 160

CONTENT_KEYS = ("content", "prompt", "completion", "chosen", "rejected", "text")
_TURNS = ("messages", "segments")


@dataclass
class Item:
    """A row being curated, with where it came from ("file:line")."""

    origin: str
    row: dict[str, Any]
    tokens: int | None = None  # length with the chat template, once the length step ran


@dataclass
class StepReport:
    """What one curation step did: rows changed and dropped, with up to 3 examples.

    Each example is ``{"origin": "file:line", "before": str, "after": str}`` (``after`` is
    empty for a dropped row; ``reason`` says why).
    """

    name: str
    title: str
    enabled: bool = True
    changed: int = 0
    dropped: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def example(self, origin: str, before: str, after: str = "", reason: str = "") -> None:
        if len(self.examples) < MAX_EXAMPLES:
            ex = {"origin": origin, "before": _snip(before), "after": _snip(after)}
            if reason:
                ex["reason"] = reason
            self.examples.append(ex)

    def summary(self) -> str:
        if not self.enabled:
            return f"{self.title}: " + str(self.details.get("skipped", "off"))
        parts = []
        if self.changed:
            parts.append(f"{self.changed} changed")
        if self.dropped:
            parts.append(f"{self.dropped} dropped")
        text = f"{self.title}: " + (", ".join(parts) if parts else "nothing to do")
        if self.details.get("kept_as_code"):
            what = (
                "spacing in code or JSON"
                if self.name == "normalize_whitespace"
                else "markup in code"
            )
            text += f" ({self.details['kept_as_code']} rows have {what}: left alone)"
        return text


def _snip(text: str) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def row_text(row: dict[str, Any]) -> str:
    """All the text of a row, turns joined by newlines (for hashing, PII search, examples)."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for k in ("messages", "segments", *CONTENT_KEYS):
                if k in value:
                    walk(value[k])

    walk(row)
    return "\n".join(parts)


def map_text(row: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """A copy of ``row`` with ``fn`` applied to every content string (roles and labels kept)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: (walk(v) if k in CONTENT_KEYS else v) for k, v in value.items()}
        return value

    return {k: (walk(v) if k in CONTENT_KEYS or k in _TURNS else v) for k, v in row.items()}
