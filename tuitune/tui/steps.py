"""The wizard's steps, in order, in one place: name, title, screen and what opening it
directly needs. The App, the screens' header, help, the key map and ``tuitune --step`` read
it. No Textual import: the CLI builds its help from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    screen: str  # "package.module.Class", imported on first visit
    needs: str = ""  # what ``--step NAME`` needs first: "" (nothing), "data" or "run"


WIZARD: tuple[Step, ...] = (
    Step("start", "Start", "tuitune.tui.screens.start.StartScreen"),
    Step("decide", "Decide", "tuitune.tui.screens.decide.DecideScreen"),
    Step("hardware", "Hardware", "tuitune.tui.screens.hardware.HardwareScreen"),
    Step("model", "Model", "tuitune.tui.screens.model.ModelScreen"),
    Step("data", "Data", "tuitune.tui.screens.data.DataScreen"),
    Step("template", "Template", "tuitune.tui.screens.template.TemplateScreen", needs="data"),
    Step("configure", "Configure", "tuitune.tui.screens.configure.ConfigureScreen", needs="data"),
    Step("train", "Train", "tuitune.tui.screens.train.TrainScreen", needs="data"),
    Step("evaluate", "Evaluate", "tuitune.tui.screens.evaluate.EvaluateScreen", needs="run"),
)
STEPS: tuple[str, ...] = tuple(s.name for s in WIZARD)
TITLES: dict[str, str] = {s.name: s.title for s in WIZARD}
SCREENS: dict[str, str] = {s.name: s.screen for s in WIZARD}
NEEDS: dict[str, str] = {s.name: s.needs for s in WIZARD}
