"""A session's name follows what it holds (method, model, task) until the user names it.

The name the wizard gave last is kept in ``answers["session"]["auto_name"]``: while the
session's name is still that one (or empty, or the quickstart template's), it is replaced
when the content changes; a name the user typed is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitune.core.models.resolve import DEFAULT_MODEL_NAME

METHOD_LABELS = {
    "full": "Full SFT",
    "lora": "LoRA",
    "qlora": "QLoRA",
    "dpo": "DPO",
    "reward": "Reward model",
    "grpo": "GRPO",
}
# Names that came with a template, not from a user.
TEMPLATE_NAMES = ("", "quickstart")


def model_label(ref: str) -> str:
    """'default' -> the embedded model's name; a path -> its folder; an id -> its last part."""
    ref = (ref or "default").strip()
    if ref == "default":
        return DEFAULT_MODEL_NAME
    return Path(ref.rstrip("/")).name or ref


def task_label(session: Any) -> str:
    """The evaluation task, else the first training file's stem."""
    if session.evaluation.task:
        return str(session.evaluation.task)
    if session.data.train:
        return Path(session.data.train[0]).stem
    return ""


def content_name(session: Any) -> str:
    """'DPO on SmolLM2-135M-Instruct, json_extract' from the session's spec, model and task."""
    method = str(session.spec.get("method") or "lora")
    name = f"{METHOD_LABELS.get(method, method)} on {model_label(session.model.ref)}"
    task = task_label(session)
    return f"{name}, {task}" if task else name


def is_user_named(session: Any) -> bool:
    auto = (session.answers.get("session") or {}).get("auto_name", "")
    name = session.name or ""
    return not (name in TEMPLATE_NAMES or name == auto or name.lower().startswith("quickstart"))


def refresh_name(session: Any) -> str:
    """Rename the session after its content unless the user named it; returns the name."""
    if is_user_named(session):
        return session.name
    name = content_name(session)
    session.name = name
    session.answers.setdefault("session", {})["auto_name"] = name
    return name


def set_user_name(session: Any, name: str) -> None:
    """The user's own name: kept from now on (an empty one goes back to the content name)."""
    session.name = name.strip()
    session.answers.setdefault("session", {})["auto_name"] = ""
    if not session.name:
        refresh_name(session)


def distinct_labels(names: list[str]) -> list[str]:
    """The same names with ' (2)', ' (3)'... on repeats, so no two list entries read alike.
    The first (newest) keeps the bare name."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out
