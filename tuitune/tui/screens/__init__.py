"""One screen per wizard step, imported on first visit so the first paint stays fast
(the Train screen's plot pulls in numpy)."""

from __future__ import annotations

import importlib

from textual.screen import Screen

from tuitune.tui.steps import SCREENS as _SCREENS


def screen_class(step: str) -> type[Screen]:
    module, _, name = _SCREENS[step].rpartition(".")
    return getattr(importlib.import_module(module), name)
