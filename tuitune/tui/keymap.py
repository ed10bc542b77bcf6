"""The user's keymap: ``[keymap]`` in ``CONFIG_DIR/config.toml``, binding id -> keys.

As posting does it: every binding has an id (``Binding(..., id="next")``) and the file maps
ids to Textual key strings, several separated by commas::

    [keymap]
    next = "ctrl+n,f2"
    quit = "ctrl+c"

``App.set_keymap`` applies it. A bad file is refused before the wizard opens, with the file,
the line where TOML says so, and the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tuitune.core import paths
from tuitune.core.errors import TuituneError
from tuitune.tui.steps import STEPS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"


def config_file() -> Path:
    return paths.config_dir() / CONFIG_NAME


def binding_ids() -> dict[str, str]:
    """Every remappable binding id with what it does, from the app and its screens."""
    from tuitune.tui.app import TuituneApp
    from tuitune.tui.help import HelpScreen
    from tuitune.tui.screens import screen_class
    from tuitune.tui.screens.chat import ChatScreen

    classes = [TuituneApp, HelpScreen, ChatScreen]
    classes += [screen_class(step) for step in STEPS]
    out: dict[str, str] = {}
    for cls in classes:
        for b in getattr(cls, "BINDINGS", []):
            if getattr(b, "id", None):
                out.setdefault(b.id, b.description or b.action)
    return out


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """The ``[keymap]`` table, checked: known ids, non-empty key strings. {} without a file."""
    path = path or config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise TuituneError(f"cannot read the config file: {e.strerror}", path=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TuituneError(
            f"invalid TOML: {e}", path=path, fix='write the keymap as [keymap] next = "ctrl+n"'
        ) from None
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        raise TuituneError("'keymap' must be a table", path=path, fix="start it with [keymap]")
    known = binding_ids()
    keymap: dict[str, str] = {}
    for key, value in table.items():
        if key not in known:
            raise TuituneError(
                f"unknown binding id 'keymap.{key}'",
                path=path,
                fix="use one of " + ", ".join(sorted(known)),
            )
        if not isinstance(value, str) or not value.strip():
            raise TuituneError(
                f'\'keymap.{key}\' must be a key string such as "ctrl+n" or "f2,ctrl+n"',
                path=path,
            )
        keymap[key] = value.replace(" ", "")
    return keymap
