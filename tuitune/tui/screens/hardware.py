"""Step 3: what this machine has, what fits on it, and the recommendation with its reasons.

The probe (NVML or CPU / Apple MPS), the estimate and the recommendation come from
``tuitune.core`` (probe, estimate, recommend); this screen lays them out.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen

FIT_STYLE = {"fits": "green", "tight": "yellow", "no": "red"}


class HardwareScreen(StepScreen):
    STEP = "hardware"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="hw-scroll"):
            yield Static("Probing the hardware...", id="hw-status")
            yield DataTable(id="devices", cursor_type="none", show_cursor=False)
            yield Static(id="recommendation")
            yield Static(
                "What fits (estimated peak memory per method and model size):", classes="section"
            )
            yield DataTable(id="fits", cursor_type="none", show_cursor=False)

    def on_mount(self) -> None:
        super().on_mount()
        cached = self.tapp.cache.get("probe")
        if cached is not None:
            self.show(cached)
        else:
            self._probe()

    @work(thread=True, group="probe", exclusive=True, exit_on_error=False)
    def _probe(self) -> None:
        app = self.tapp
        try:
            from tuitune.tui.hardware_glue import probe_all

            hw, fits, rec = probe_all(app.probe_kwargs, app.session)
        except Exception as e:  # noqa: BLE001
            app.fail("hardware probe", e)
            self.post_message(m.ProbeCompleted(None, [], None))
            return
        self.post_message(m.ProbeCompleted(hw, fits, rec))

    @on(m.ProbeCompleted)
    def _probed(self, message: m.ProbeCompleted) -> None:
        if message.hardware is not None:
            self.tapp.cache["probe"] = message
        self.show(message)

    def show(self, message: m.ProbeCompleted) -> None:
        from tuitune.tui import hardware_glue as glue

        status = self.query_one("#hw-status", Static)
        if message.hardware is None:
            status.update(
                Text("The probe failed: see the message; defaults are used.", style="bold red")
            )
            return
        status.update(glue.hardware_summary(message.hardware))
        devices = self.query_one("#devices", DataTable)
        devices.clear(columns=True)
        header, rows = glue.device_rows(message.hardware)
        devices.add_columns(*header)
        for r in rows:
            devices.add_row(*r)
        fits = self.query_one("#fits", DataTable)
        fits.clear(columns=True)
        header, rows = glue.fit_rows(message.fits)
        fits.add_columns(*header)
        for r in rows:
            fits.add_row(*[_fit_cell(c) for c in r])
        self.query_one("#recommendation", Static).update(
            glue.recommendation_text(message.recommendation)
        )

    def collect(self) -> bool:
        msg = self.tapp.cache.get("probe")
        if msg is not None:
            from tuitune.tui import hardware_glue as glue

            self.tapp.answers(self.STEP).update(glue.recommendation_answers(msg.recommendation))
            self.tapp.cache["recommended_spec"] = glue.recommended_spec(msg.recommendation)
        return True


def _fit_cell(cell: Any) -> Text:
    """A what-fits cell: (text, verdict) tuples get the verdict's colour and word."""
    if isinstance(cell, tuple):
        text, verdict = cell
        return Text(f"{text} {verdict}", style=FIT_STYLE.get(verdict, ""))
    return Text(str(cell))
