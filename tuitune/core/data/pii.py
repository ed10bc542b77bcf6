"""Offline PII detection: emails, phone numbers, payment cards (Luhn-checked), IP addresses,
API keys and tokens. Regexes only, so it works without any model download; each kind has
tests with true and false positives.

``redact`` replaces a finding with a typed placeholder (``[EMAIL]``), ``drop`` removes the
whole row. Placeholders are stable text so a model trained on redacted data learns the
placeholder, never the secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tuitune.core.data.rows import Item, StepReport, map_text, row_text

KINDS = ("api_key", "email", "card", "ip", "phone")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)
_API_KEY = re.compile(
    r"\b(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|glpat-[A-Za-z0-9_-]{20}"  # GitLab
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWT
    r")"
)
_KEY_ASSIGN = re.compile(
    r"(?i)\b(?:api[_-]?key|secret|token|password|passwd|access[_-]?key)\b[\"']?\s*[:=]\s*[\"']?"
    r"([A-Za-z0-9_\-+/=]{16,})"
)
_DIGIT_RUN = re.compile(r"\d(?:[ ().+-]{0,2}\d){6}")
_KEYWORD = re.compile(r"(?i)key|secret|token|passw")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{2,4}[\s.-]\d{3,4}(?![\w])"
    r"|(?<![\w+])\+\d{8,14}(?!\w)"
)


_DIGIT_AFTER = re.compile(r"[ .-]?\d")
_DIGIT_BEFORE = re.compile(r"\d[ .-]?$")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits):
            yield Finding("card", m.start(), m.end(), m.group())


def _ips(text: str) -> Iterator[Finding]:
    for m in _IPV4.finditer(text):
        try:
            ip = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        # Version strings such as 1.2.3.4 are common in text: keep only plausible hosts.
        if ip.is_unspecified or ip.is_loopback:
            continue
        yield Finding("ip", m.start(), m.end(), m.group())
    for m in _IPV6.finditer(text) if text.count(":") >= 2 else ():
        if len(m.group()) < 6:
            continue
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        yield Finding("ip", m.start(), m.end(), m.group())


def _phones(text: str) -> Iterator[Finding]:
    for m in _PHONE.finditer(text):
        # Part of a longer digit run (a card that failed Luhn, an ISBN): not a phone number.
        if _DIGIT_AFTER.match(text, m.end()) or _DIGIT_BEFORE.search(text[: m.start()]):
            continue
        digits = re.sub(r"\D", "", m.group())
        if 7 <= len(digits) <= 15:
            yield Finding("phone", m.start(), m.end(), m.group())


def find_pii(text: str) -> list[Finding]:
    """Non-overlapping findings in ``text``, earlier kinds in ``KINDS`` winning overlaps."""
    if not text:
        return []
    found: list[Finding] = []
    found += [Finding("api_key", m.start(), m.end(), m.group()) for m in _API_KEY.finditer(text)]
    if _KEYWORD.search(text):
        found += [
            Finding("api_key", m.start(1), m.end(1), m.group(1)) for m in _KEY_ASSIGN.finditer(text)
        ]
    if "@" in text:
        found += [Finding("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    if _DIGIT_RUN.search(text):  # cards and phones need 7+ digits in a row (with separators)
        found += list(_cards(text))
        found += list(_phones(text))
    found += list(_ips(text))
    chosen: list[Finding] = []
    for f in sorted(found, key=lambda f: (KINDS.index(f.kind), f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def redact(text: str, findings: list[Finding] | None = None) -> str:
    """``text`` with each finding replaced by ``[KIND]``."""
    findings = find_pii(text) if findings is None else findings
    out, pos = [], 0
    for f in findings:
        out.append(text[pos : f.start])
        out.append(f"[{f.kind.upper()}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def pii_step(items: list[Item], step: StepReport, *, mode: str) -> list[Item]:
    """Redact or drop rows with PII; counts per kind go to ``step.details["kinds"]``."""

    kinds: dict[str, int] = {}
    kept = []
    for item in items:
        text = row_text(item.row)
        findings = find_pii(text)
        if not findings:
            kept.append(item)
            continue
        for f in findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        what = ", ".join(sorted({f.kind for f in findings}))
        if mode == "drop":
            step.dropped += 1
            step.example(item.origin, text, reason=f"contains {what}")
            continue
        item.row = map_text(item.row, redact)
        step.changed += 1
        step.example(item.origin, text, row_text(item.row), reason=f"contains {what}")
        kept.append(item)
    step.details["kinds"] = kinds
    return kept
