"""A yes/no question over the current screen (y / n / Esc); dismisses with True or False."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Confirm(ModalScreen[bool]):
    """Ask before replacing what the user typed."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 90%; max-width: 90; height: auto; max-height: 90%;
        border: round $warning; background: $surface; padding: 0 1;
    }
    Confirm #confirm-text { height: auto; }
    Confirm Horizontal { height: 1; margin-top: 1; align: center middle; }
    Confirm Button { margin: 0 2; }
    """

    def __init__(self, question: str, yes: str = "Yes (y)", no: str = "No (n)") -> None:
        super().__init__()
        self.question = question
        self.labels = (yes, no)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="confirm-text")
            with Horizontal():
                yield Button(self.labels[0], id="yes", variant="warning", compact=True)
                yield Button(self.labels[1], id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
