"""One screen per wizard step, imported on first visit so the first paint stays fast
(the Train screen's plot pulls in numpy)."""

from __future__ import annotations

import importlib

from textual.screen import Screen

_SCREENS = {
    "start": "start.StartScreen",
    "decide": "decide.DecideScreen",
    "hardware": "hardware.HardwareScreen",
    "model": "model.ModelScreen",
    "data": "data.DataScreen",
    "template": "template.TemplateScreen",
    "configure": "configure.ConfigureScreen",
    "train": "train.TrainScreen",
    "evaluate": "evaluate.EvaluateScreen",
}


def screen_class(step: str) -> type[Screen]:
    module, _, name = _SCREENS[step].partition(".")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
