"""Step 3: what this machine has, what fits on it, and the plan with its reasons.

The probe (NVML or CPU / Apple MPS) comes from ``core.hardware.probe``; the plan from ``core.training.plan``
(the same one Configure edits and Train launches), so the memory figure here is the figure
everywhere. The what-fits grid is sized with the plan's spec and says so.
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

FIT_STYLE = {"fits": "green", "tight": "yellow", "slow": "yellow", "too slow": "red", "no": "red"}
# Device-table columns dropped first when the terminal is narrow (the name never goes).
DROP_ORDER = ("other procs", "flash-attn", "compute cap.", "free", "bf16")


class HardwareScreen(StepScreen):
    STEP = "hardware"

    def __init__(self) -> None:
        super().__init__()
        self._device_table: tuple[list[str], list[list[str]]] | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="hw-scroll"):
            yield Static("Probing the hardware...", id="hw-status")
            yield DataTable(id="devices", cursor_type="none", show_cursor=False)
            yield Static("Planning...", id="recommendation")
            yield Static("What fits:", id="fits-title", classes="section")
            yield DataTable(id="fits", cursor_type="none", show_cursor=False)

    def on_mount(self) -> None:
        super().on_mount()
        cached = self.tapp.cache.get("probe")
        if cached is not None:
            self.show(cached)
            self._plan()
        else:
            self._probe()

    def on_screen_resume(self) -> None:
        if self.tapp.cache.get("probe") is not None:
            self._plan()

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
            self._plan()
        self.show(message)

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def _plan(self) -> None:
        from tuitune.tui import hardware_glue as glue

        app = self.tapp
        try:
            plan = glue.plan_for(app)
            timing = glue.plan_time(app, plan)
            hw = glue.hardware_of(app)
            fits, title = glue.what_fits_for_plan(hw, plan, app.session)
            table = glue.fit_rows_timed(app, fits, plan)
        except Exception as e:  # noqa: BLE001 - shown in place of the plan, with the fix
            self.post_message(m.PlanComputed(None, None, str(e), {}))
            return
        self.post_message(m.PlanComputed(plan, timing, "", {"fits": table, "title": title}))

    @on(m.PlanComputed)
    def _planned(self, message: m.PlanComputed) -> None:
        box = self.query_one("#recommendation", Static)
        if message.plan is None:
            box.update(Text(f"No plan: {message.error}", style="bold red"))
            return
        self.tapp.cache["plan"] = message.plan
        box.update(plan_text(message.plan, message.timing))
        self.query_one("#fits-title", Static).update(message.extra["title"])
        fits = self.query_one("#fits", DataTable)
        fits.clear(columns=True)
        header, rows = message.extra["fits"]
        fits.add_columns(*header)
        for r in rows:
            fits.add_row(*[_fit_cell(c) for c in r])

    def show(self, message: m.ProbeCompleted) -> None:
        from tuitune.tui import hardware_glue as glue

        status = self.query_one("#hw-status", Static)
        if message.hardware is None:
            status.update(
                Text("The probe failed: see the message; defaults are used.", style="bold red")
            )
            return
        status.update(glue.hardware_summary(message.hardware))
        self._device_table = glue.device_rows(message.hardware)
        self._fill_devices()

    def on_resize(self) -> None:
        self._fill_devices()

    def _fill_devices(self) -> None:
        if self._device_table is None:
            return
        header, rows = drop_columns(*self._device_table, max(40, self.size.width - 4))
        devices = self.query_one("#devices", DataTable)
        devices.clear(columns=True)
        devices.add_columns(*header)
        for r in rows:
            devices.add_row(*r)

    def collect(self) -> bool:
        msg = self.tapp.cache.get("probe")
        if msg is not None:
            from tuitune.tui import hardware_glue as glue

            self.tapp.answers(self.STEP).update(glue.recommendation_answers(msg.recommendation))
            self.tapp.cache["recommended_spec"] = glue.recommended_spec(msg.recommendation)
        return True


def plan_text(plan: Any, timing: Any) -> Text:
    """The plan's figure and the choices tuitune made, each with why (yours are on Configure)."""
    from tuitune.tui.hardware_glue import plan_memory_text

    t = plan_memory_text(plan, timing)
    mine = [r for r in plan.rows() if r[2] != "user"]
    yours = [r for r in plan.rows() if r[2] == "user"]
    for name, value, source, reason in mine:
        t.append(f"\n - {name} = {value}", style="bold")
        t.append(f" [{source}] ", style="dim")
        t.append(reason)
    if yours:
        t.append(
            f"\n + {len(yours)} value(s) set in this session "
            f"({', '.join(r[0] for r in yours[:6])}{'...' if len(yours) > 6 else ''}): "
            "Configure shows and edits them",
            style="dim",
        )
    for note in plan.notes:
        t.append(f"\n ! {note}", style="yellow")
    for line in plan.advice:
        t.append(f"\n > {line}", style="bold yellow")
    return t


def drop_columns(
    header: list[str], rows: list[list[str]], width: int
) -> tuple[list[str], list[list[str]]]:
    """Drop columns in ``DROP_ORDER`` until the table fits ``width`` (2 cells of padding)."""
    keep = list(range(len(header)))

    def need() -> int:
        return sum(max(len(header[i]), *(len(r[i]) for r in rows)) + 2 for i in keep)

    for name in DROP_ORDER:
        if need() <= width:
            break
        if name in header:
            keep.remove(header.index(name))
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _fit_cell(cell: Any) -> Text:
    """A what-fits cell: (text, verdict) tuples get the verdict's colour and word."""
    if isinstance(cell, tuple):
        text, verdict = cell
        return Text(f"{text} {verdict}", style=FIT_STYLE.get(verdict, ""))
    return Text(str(cell))
