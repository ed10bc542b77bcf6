"""A checkbox whose state reads without colour: ``X`` when on, blank when off (NO_COLOR)."""

from __future__ import annotations

from textual.widgets import Checkbox


class YesBox(Checkbox):
    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's class attribute name
        return "X" if self.value else " "
