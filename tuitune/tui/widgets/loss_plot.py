"""The loss plot: one narrow interface in front of textual-plot's ``PlotWidget``.

Screens call ``set_series`` as often as they like (a timer at 2-4 Hz); the plot only
re-renders when the data changed, so an idle run costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget


class LossPlot(Widget):
    """Train loss (line) and eval loss (markers) against the optimizer step."""

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 6; }
    LossPlot > PlotWidget { height: 1fr; }
    LossPlot > .loss-key { height: 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._key: tuple[int, int, float | None, float | None] | None = None

    def compose(self) -> ComposeResult:
        # The key sits above the plot: an in-plot legend covers the newest points at 80x24.
        key = Text(" ")
        key.append("--- train loss", style="cyan")
        key.append("   ")
        key.append("* eval loss", style="yellow")
        yield Static(key, classes="loss-key")
        yield PlotWidget(allow_pan_and_zoom=False)

    def on_mount(self) -> None:
        plot = self.query_one(PlotWidget)
        plot.set_xlabel("step")

    @property
    def points(self) -> int:
        return self._key[0] + self._key[1] if self._key else 0

    def set_series(
        self,
        steps: Sequence[int],
        train: Sequence[float],
        eval_steps: Sequence[int] = (),
        eval: Sequence[float] = (),
    ) -> bool:
        """Show these curves; returns False when nothing changed (no redraw)."""
        key = (
            len(steps),
            len(eval_steps),
            train[-1] if train else None,
            eval[-1] if eval else None,
        )
        if key == self._key:
            return False
        self._key = key
        plot = self.query_one(PlotWidget)
        plot.clear()
        if steps:
            mode = HiResMode.BRAILLE if len(steps) > 1 else None
            plot.plot(list(steps), list(train), line_style="cyan", hires_mode=mode, label="train")
        if eval_steps:
            plot.scatter(
                list(eval_steps), list(eval), marker="*", marker_style="yellow", label="eval"
            )
        if steps or eval_steps:
            xmax = max([*steps, *eval_steps, 1])
            plot.set_xlimits(0, xmax * 1.02)
            ys = [*train, *eval]
            lo, hi = min(ys), max(ys)
            pad = (hi - lo) * 0.08 or 0.1
            plot.set_ylimits(lo - pad, hi + pad)
        return True
