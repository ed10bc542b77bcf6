"""One screen per wizard step."""

from __future__ import annotations

from tuitune.tui.screens.configure import ConfigureScreen
from tuitune.tui.screens.data import DataScreen
from tuitune.tui.screens.decide import DecideScreen
from tuitune.tui.screens.evaluate import EvaluateScreen
from tuitune.tui.screens.hardware import HardwareScreen
from tuitune.tui.screens.model import ModelScreen
from tuitune.tui.screens.start import StartScreen
from tuitune.tui.screens.template import TemplateScreen
from tuitune.tui.screens.train import TrainScreen

SCREENS = {
    "start": StartScreen,
    "decide": DecideScreen,
    "hardware": HardwareScreen,
    "model": ModelScreen,
    "data": DataScreen,
    "template": TemplateScreen,
    "configure": ConfigureScreen,
    "train": TrainScreen,
    "evaluate": EvaluateScreen,
}
