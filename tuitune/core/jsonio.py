"""Reading JSON files, the one way every module does it.

- ``read_json``: a file that must be there and parse; a one-line error naming file and line.
- ``from_dict``: a dataclass from JSON data (sessions, TrainSpec, EvalSpec), strictly:
  unknown keys, wrong types and another ``schema_version`` are refused, naming the field.
- ``read_object``: a file tuitune writes that may be missing or half-written while another
  process works (run.json under a viewer, a report of a killed run): ``{}`` then.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError


def read_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_json(
    path: str | Path,
    *,
    what: str = "file",
    missing_fix: str | None = None,
    invalid_fix: str | None = None,
) -> Any:
    """The JSON in ``path``; TuituneError naming the file (and line) when it is missing, not
    UTF-8 or not valid JSON, with the fix for each case where the caller knows one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TuituneError(f"{what} not found", path=path, fix=missing_fix) from None
    except UnicodeDecodeError:
        raise TuituneError(f"{what} is not UTF-8 text", path=path) from None
    except OSError as e:
        raise TuituneError(f"cannot read {what}: {e.strerror or e}", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TuituneError(
            f"invalid JSON at column {e.colno}: {e.msg}", path=path, line=e.lineno, fix=invalid_fix
        ) from None


def _check_type(value: Any, tp: Any) -> bool:
    """Loose runtime check of JSON values against simple annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(tp))
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_check_type(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    return isinstance(value, tp) if isinstance(tp, type) else True


def from_dict(
    cls: type, data: Any, *, source: str | Path, schema_version: int | None, prefix: str = ""
) -> Any:
    """Build dataclass ``cls`` from JSON data, with one-line errors naming file and field.

    Unknown keys, wrong types and a newer or unknown ``schema_version`` are refused; missing
    optional fields take their defaults (older files stay readable).
    """
    if not isinstance(data, dict):
        raise TuituneError(f"{prefix or 'top level'} must be a JSON object", path=source)
    version = data.get("schema_version", schema_version)
    if schema_version is not None and version != schema_version:
        newer = isinstance(version, int) and version > schema_version
        raise TuituneError(
            f"field '{prefix}schema_version' is {version!r}, this tuitune reads version "
            f"{schema_version}",
            path=source,
            fix="upgrade tuitune" if newer else "recreate the file with this tuitune",
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise TuituneError(
            f"unknown field '{prefix}{unknown[0]}'", path=source, fix="remove it or check spelling"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TuituneError(f"missing field '{prefix}{name}'", path=source)
            continue
        value, tp = data[name], hints[name]
        if not _check_type(value, tp):
            raise TuituneError(
                f"field '{prefix}{name}' has the wrong type ({type(value).__name__})",
                path=source,
                fix=f"expected {getattr(tp, '__name__', tp)}",
            )
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            value = from_dict(
                tp, value, source=source, schema_version=None, prefix=f"{prefix}{name}."
            )
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TuituneError as e:
        raise TuituneError(e.message, path=source, fix=e.fix) from None
