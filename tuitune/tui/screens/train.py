"""Step 8: the run, live. The App owns the run; this screen only draws it (3 Hz timer)."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static

from tuitune.tui.screens.base import StepScreen
from tuitune.tui.widgets.loss_plot import LossPlot

REDRAW_HZ = 3


class TrainScreen(StepScreen):
    STEP = "train"
    NEXT_LABEL = "Train"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("s", "start", "Start", id="start"),
        Binding("x", "stop", "Stop (checkpoint)", id="stop"),
        Binding("d", "detach", "Detach", id="detach"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._log_key: tuple[int, str] | None = None
        self._shown: dict[str, object] = {}

    def compose_body(self) -> ComposeResult:
        yield Static(id="train-status")
        yield ProgressBar(id="train-progress", show_eta=False, total=None)
        yield LossPlot(id="loss")
        yield Static(id="train-log")

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()
        self.set_interval(1 / REDRAW_HZ, self.redraw)

    def on_screen_resume(self) -> None:
        self.redraw()

    # -- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.tapp
        if action == "start":
            return not app.training and not app.launch_status
        if action in ("stop", "detach"):
            return app.training
        return True

    def action_start(self) -> None:
        self.tapp.start_training()
        self.redraw()

    def action_stop(self) -> None:
        self.tapp.stop_training()

    def action_detach(self) -> None:
        app = self.tapp
        if app.run_view is None:
            return
        run = app.run_view.run
        app.workers.cancel_group(app, "tail")
        app.run_view = None
        self.notify(f"detached; the run goes on. Re-attach: tuitune attach {run.root}")
        app.goto("start")

    def action_next(self) -> None:
        app = self.tapp
        view = app.run_view
        if view is None and not app.launch_status:
            self.action_start()
        elif view is not None and view.finished:
            app.answers(self.STEP)["run"] = str(view.run.root)
            app.next_step(self.STEP)
        elif view is not None and view.final is not None:
            self.notify(f"the run ended ({view.final.get('type')}): s starts a new one")
        else:
            self.notify("training is going: x stops it with a checkpoint, d detaches")

    # -- drawing ---------------------------------------------------------------------------
    def _set(self, key: str, value: object, apply: object) -> None:
        """Apply only what changed: the timer runs at 3 Hz on a shared CPU."""
        if self._shown.get(key) != value:
            self._shown[key] = value
            apply()  # type: ignore[operator]

    def _state(self) -> None:
        app = self.tapp
        view = app.run_view
        state = (app.training, bool(app.launch_status), view.finished if view else None)
        self._set("bindings", state, self.refresh_bindings)

    def redraw(self) -> None:
        app = self.tapp
        view = app.run_view
        status = self.query_one("#train-status", Static)
        bar = self.query_one("#train-progress", ProgressBar)
        next_button = self.query_one("#next")
        if view is None:
            if app.launch_status:
                text = Text(f"Launching: {app.launch_status}", style="bold")
            else:
                text = Text(
                    "Ready. Enter (or s) starts training in its own process: closing "
                    "this app or detaching (d) leaves it running.",
                )
            self._set("status", text.plain, lambda: status.update(text))
            self._set("label", "Train >", lambda: setattr(next_button, "label", "Train >"))
            self._state()
            return
        c = view.curves
        last = c.last_step
        step = int(last.get("step") or 0)
        total = c.total_steps or 0
        t = Text()
        t.append(f"run {view.run.id}", style="bold")
        if c.started:
            t.append(f"  {c.started.get('method', '')}")
        t.append(f"  step {step}/{total or '?'}")
        if c.final:
            kind = c.final.get("type", "")
            t.append(f"  {kind.upper()}", style="bold green" if kind == "finished" else "bold red")
            msg = c.final.get("message") or c.final.get("reason")
            if msg:
                t.append(f" {msg}")
        elif c.started:
            eta = _eta(c.started.get("time"), last.get("time"), step, total)
            if eta:
                t.append(f"  ETA {eta}")
        t.append("\n")
        if c.train_loss:
            t.append(f"loss {c.train_loss[-1]:.4f}", style="cyan")
        if c.eval_loss:
            t.append(f"  eval {c.eval_loss[-1]:.4f}", style="yellow")
        if last.get("tokens_per_second"):
            t.append(f"  {last['tokens_per_second']:.0f} tok/s")
        if last.get("memory_gib") is not None:
            t.append(f"  mem {last['memory_gib']:.2f} GiB")
        if last.get("gpu_util") is not None:
            t.append(f"  util {last['gpu_util']:.0f}%")
        if last.get("learning_rate") is not None:
            t.append(f"  lr {last['learning_rate']:.2e}")
        self._set("status", t.plain, lambda: status.update(t))
        if total:
            self._set("bar", (total, step), lambda: bar.update(total=total, progress=step))
        self.query_one(LossPlot).set_series(c.train_steps, c.train_loss, c.eval_steps, c.eval_loss)
        key = (len(view.log), view.log[-1] if view.log else "")
        if key != self._log_key:
            self._log_key = key
            height = max(1, self.query_one("#train-log").size.height - 1)
            lines = [ln[:300] for ln in list(view.log)[-height:]]
            self.query_one("#train-log", Static).update(
                Text("\n".join(lines), style="dim", no_wrap=True, overflow="ellipsis")
            )
        label = "Evaluate >" if view.finished else ("Train again >" if c.final else "Training...")
        self._set("label", label, lambda: setattr(next_button, "label", label))
        self._state()


def _eta(start: float | None, now: float | None, step: int, total: int) -> str:
    if not start or not now or step <= 0 or not total or step >= total:
        return ""
    left = (now - start) / step * (total - step)
    return time.strftime("%H:%M:%S" if left >= 3600 else "%M:%S", time.gmtime(left))
