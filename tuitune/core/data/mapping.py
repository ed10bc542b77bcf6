"""Column and turn-key mappings: the user's own (``--columns``) and LLaMA-Factory's.

A file whose columns are not standard (``question``/``answer``, ``instruction``/``response``)
gets a ``ColumnMap`` from the user, ``prompt=question,completion=answer``: each row is
renamed before detection, so every format tuitune reads can be reached from any schema.

LLaMA-Factory describes its data in a ``dataset_info.json`` next to the files: per entry a
``file_name``, a ``formatting`` (alpaca or sharegpt), ``ranking`` (preference pairs),
``columns`` (its names -> the file's columns) and, for sharegpt, ``tags`` (which keys and
values mean role, content, user, assistant, function call, observation, system). Such an
entry is read as the same kind of mapping, translated into tuitune's names, so LLaMA-Factory
data loads as LLaMA-Factory would read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.data.formats import CHAT_KEYS, RowError
from tuitune.core.errors import TuituneError

INFO_FILE = "dataset_info.json"

# Names a user may map a column to (tuitune's row keys), and the turn tags.
TARGETS = (
    "prompt",
    "completion",
    "text",
    "messages",
    "conversations",
    "chosen",
    "rejected",
    "label",
    "system",
    "tools",
    "instruction",
    "input",
    "output",
    "history",
    "images",
    "videos",
    "audios",
)
TAGS = (
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "system_tag",
    "function_tag",
    "observation_tag",
)
# LLaMA-Factory's sharegpt defaults (data/README.md).
_TAG_DEFAULTS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
_CANONICAL = {
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


@dataclass(frozen=True)
class ColumnMap:
    """Rename a row's columns (``columns``: tuitune name -> the file's column) and, with
    ``tags``, its turns' keys and role values; ``origin`` says where the mapping came from."""

    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    origin: str = "--columns"

    def describe(self) -> str:
        pairs = [f"{k}={v}" for k, v in self.columns.items() if k != v]
        pairs += [f"{k}={v}" for k, v in self.tags.items() if _TAG_DEFAULTS.get(k) != v]
        return f"{self.origin}" + (f" ({', '.join(pairs)})" if pairs else "")

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with tuitune's column names; RowError when a mapped column is missing."""
        sources = set(self.columns.values())
        out = {k: v for k, v in row.items() if k not in sources}
        for target, source in self.columns.items():
            if source not in row:
                raise RowError(
                    f"column {source!r} (mapped to {target} by {self.origin}) is missing"
                )
            out[target] = row[source]
        if self.tags:
            for key in (*CHAT_KEYS, "chosen", "rejected"):
                if key in out:
                    out[key] = self._turns(out[key])
        return out

    def _turns(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self._turn(value)
        if isinstance(value, list):
            return [self._turn(t) if isinstance(t, dict) else t for t in value]
        return value

    def _turn(self, turn: dict[str, Any]) -> dict[str, Any]:
        """A turn with from/value keys and LLaMA-Factory's canonical role values."""
        tags = {**_TAG_DEFAULTS, **self.tags}
        role_key, content_key = tags["role_tag"], tags["content_tag"]
        if role_key not in turn:
            return turn
        role = turn[role_key]
        canonical = next((_CANONICAL[t] for t in _CANONICAL if tags[t] == role), role)
        out = {k: v for k, v in turn.items() if k not in (role_key, content_key)}
        out["from"], out["value"] = canonical, turn.get(content_key)
        return out


def parse_columns(spec: str | dict[str, str] | None) -> ColumnMap | None:
    """``"prompt=question,completion=answer"`` (or a dict) as a ColumnMap; None when empty."""
    if not spec:
        return None
    pairs: dict[str, str] = {}
    if isinstance(spec, dict):
        pairs = {str(k).strip(): str(v).strip() for k, v in spec.items()}
    else:
        for part in str(spec).split(","):
            if not part.strip():
                continue
            target, sep, source = part.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise TuituneError(
                    f"column mapping {part.strip()!r} is not NAME=COLUMN",
                    fix="write e.g. --columns prompt=question,completion=answer",
                )
            pairs[target.strip()] = source.strip()
    unknown = [k for k in pairs if k not in TARGETS and k not in TAGS]
    if unknown:
        raise TuituneError(
            f"unknown column name {unknown[0]!r} in the column mapping",
            fix=f"map to one of {', '.join(TARGETS)} (or the turn tags {', '.join(TAGS)})",
        )
    columns = {k: v for k, v in pairs.items() if k in TARGETS}
    tags = {k: v for k, v in pairs.items() if k in TAGS}
    return ColumnMap(columns, tags, "--columns")


# --- LLaMA-Factory's dataset_info.json ----------------------------------------------------


def is_llamafactory_info(path: Path) -> bool:
    """True for a LLaMA-Factory dataset_info.json (entries with file_name / hub urls), as
    opposed to the dataset_info.json ``datasets`` writes into a saved dataset."""
    info = _read_info(path)
    return info is not None


def _read_info(path: Path) -> dict[str, dict[str, Any]] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or not data:
        return None
    markers = ("file_name", "hf_hub_url", "ms_hub_url", "script_url", "om_hub_url")
    entries = {k: v for k, v in data.items() if isinstance(v, dict)}
    if not any(any(m in v for m in markers) for v in entries.values()):
        return None
    return entries


def local_entries(folder: Path) -> dict[str, Path]:
    """Entry name -> local data file for every entry of FOLDER/dataset_info.json whose file
    exists (hub entries are skipped: no hub here)."""
    info = _read_info(folder / INFO_FILE) or {}
    out = {}
    for name, entry in info.items():
        file_name = entry.get("file_name")
        if isinstance(file_name, str) and (folder / file_name).exists():
            out[name] = folder / file_name
    return out


def entry_for(path: Path) -> ColumnMap | None:
    """The mapping of ``path``'s entry in the dataset_info.json beside it, if there is one."""
    info = _read_info(path.parent / INFO_FILE)
    if not info:
        return None
    target = path.resolve()
    for name, entry in info.items():
        file_name = entry.get("file_name")
        if isinstance(file_name, str) and (path.parent / file_name).resolve() == target:
            return from_llamafactory(name, entry)
    return None


def from_llamafactory(name: str, entry: dict[str, Any]) -> ColumnMap:
    """A dataset_info.json entry as a ColumnMap in tuitune's names.

    alpaca: prompt -> instruction, query -> input, response -> output (a prompt alone is a
    pre-training text column); sharegpt: messages -> conversations, with the tags. Both:
    system, tools, history, chosen, rejected, kto_tag -> label, images/videos/audios.
    """
    formatting = str(entry.get("formatting", "alpaca"))
    cols = entry.get("columns") or {}
    if not isinstance(cols, dict):
        raise TuituneError(f"dataset_info.json entry {name!r}: 'columns' is not an object")
    origin = f"dataset_info.json entry {name!r} ({formatting})"
    out: dict[str, str] = {}
    if formatting == "sharegpt":
        renames = {"messages": "conversations", "kto_tag": "label"}
        out["conversations"] = str(cols.get("messages", "conversations"))
    else:
        renames = {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "kto_tag": "label",
        }
        answers = ("response", "chosen", "rejected", "kto_tag")
        if "prompt" in cols and not any(k in cols for k in answers):
            renames["prompt"] = "text"  # LLaMA-Factory pre-training data: {"prompt": "text"}
        else:
            out.setdefault("instruction", str(cols.get("prompt", "instruction")))
            out.setdefault("output", str(cols.get("response", "output")))
            if entry.get("ranking"):
                del out["output"]
    for key, column in cols.items():
        out[renames.get(key, key)] = str(column)
    out = {k: v for k, v in out.items() if k in TARGETS}
    tags: dict[str, str] = {}
    if formatting == "sharegpt":
        raw = entry.get("tags") or {}
        tags = {**_TAG_DEFAULTS, **{k: str(v) for k, v in raw.items() if k in TAGS}}
    return _LenientMap(out, tags, origin)


class _LenientMap(ColumnMap):
    """LLaMA-Factory's optional columns (input, system, history, tools) may be absent."""

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        present = {k: v for k, v in self.columns.items() if v in row}
        required = {
            k for k in self.columns if k in ("instruction", "output", "text", "conversations")
        }
        missing = [self.columns[k] for k in required if k not in present]
        if missing:
            raise RowError(f"column {missing[0]!r} (read by {self.origin}) is missing")
        return ColumnMap(present, self.tags, self.origin).apply(row)
