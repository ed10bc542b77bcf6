"""The frame every step shares: step bar, body, Back/Next, Footer with every key."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from tuitune.tui.steps import STEPS, TITLES


class StepBar(Static):
    """One line: where we are among the nine steps (all names when wide, a gauge when not)."""

    def __init__(self, step: str) -> None:
        super().__init__(id="stepbar")
        self.step = step

    def render(self) -> Text:
        i = STEPS.index(self.step)
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" tuitune ", style="bold reverse")
        t.append(f" {i + 1}/{len(STEPS)} {TITLES[self.step]}  ", style="bold")
        names = " > ".join(TITLES[s] for s in STEPS)
        if self.size.width >= len(t) + len(names) + 1:
            for j, s in enumerate(STEPS):
                style = "bold underline" if j == i else ("" if j < i else "dim")
                t.append(TITLES[s], style=style)
                if j < len(STEPS) - 1:
                    t.append(" > ", style="dim")
        else:
            t.append("#" * (i + 1) + "-" * (len(STEPS) - i - 1), style="bold")
            if i + 1 < len(STEPS):
                t.append(f"  next: {TITLES[STEPS[i + 1]]}", style="dim")
        return t


class StepScreen(Screen):
    """A wizard step. Subclasses fill ``compose_body`` and ``collect``."""

    STEP: ClassVar[str] = ""
    NEXT_LABEL: ClassVar[str] = "Next"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "back", "Back", id="back"),
        Binding("ctrl+n", "next", "Next", id="next"),
    ]

    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP)
        with Vertical(id="body"):
            yield from self.compose_body()
        with Horizontal(id="nav"):
            yield Button("< Back", id="back", compact=True)
            yield Static(id="nav-status")
            yield Button(f"{self.NEXT_LABEL} >", id="next", variant="primary", compact=True)
        # Compact, without the palette key (F1 help names it): every key fits at 80 columns.
        yield Footer(compact=True, show_command_palette=False)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#next", Button).focus()

    @property
    def tapp(self):  # noqa: ANN201 - the TuituneApp, typed loosely to avoid an import cycle
        return self.app

    def set_status(self, text: str | Text) -> None:
        self.query_one("#nav-status", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def collect(self) -> bool:
        """Store this step's answers in the session; False refuses to go on."""
        return True

    def action_next(self) -> None:
        if self.collect():
            self.tapp.next_step(self.STEP)

    def action_back(self) -> None:
        self.collect_quietly()
        self.tapp.prev_step(self.STEP)

    def collect_quietly(self) -> None:
        """Going back keeps what was typed, valid or not yet."""
