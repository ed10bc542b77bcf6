"""Step 1: a new session (quickstart pre-filled), resume a saved one, or attach to a run."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuitune.tui.screens.base import StepScreen


class StartScreen(StepScreen):
    STEP = "start"
    NEXT_LABEL = "Open"

    def compose_body(self) -> ComposeResult:
        yield Static(
            "Fine-tune a language model, or find out you should not. Enter takes the "
            "highlighted choice; a new session comes pre-filled with the quickstart "
            "(JSON extraction on the embedded SmolLM2-135M), so Enter through every step "
            "trains and evaluates it.",
            classes="intro",
        )
        yield OptionList(id="choices")

    def on_mount(self) -> None:
        self.refresh_choices()
        self.query_one(OptionList).focus()

    def on_screen_resume(self) -> None:
        self.refresh_choices()

    def refresh_choices(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_option(Option(Text("+ New session (quickstart defaults)", style="bold"), id="new"))
        ol.add_options(_session_options())
        for info in _runs()[:6]:
            progress = f"step {info.step or 0}/{info.total_steps or '?'}"
            loss = f"  loss {info.last_loss:.3f}" if info.last_loss is not None else ""
            label = f"  Attach {info.run.id}  {info.state}  {info.method}  {progress}{loss}"
            ol.add_option(Option(label, id=f"run:{info.run.root}"))
        ol.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.open(event.option.id or "new")

    def action_next(self) -> None:
        ol = self.query_one(OptionList)
        option = ol.get_option_at_index(ol.highlighted or 0)
        self.open(option.id or "new")

    def open(self, choice: str) -> None:
        app = self.tapp
        if choice.startswith("session:"):
            from tuitune.core.errors import TuituneError
            from tuitune.core.session import load_session

            try:
                app.session = load_session(choice.split(":", 1)[1])
            except TuituneError as e:
                self.notify(str(e), severity="error")
                return
            app.reset_screens()
            app.goto("decide")
        elif choice.startswith("run:"):
            from tuitune.core.rundir import RunDir

            app.attach_run(RunDir(__import__("pathlib").Path(choice.split(":", 1)[1])))
            app.goto("train")
        else:
            app.answers("start")["choice"] = "new"
            app.next_step(self.STEP)


def _session_options(limit: int = 6) -> list[Option]:
    """Saved sessions, newest first: date, method and a name no other entry has."""
    from tuitune.core.session_names import METHOD_LABELS, distinct_labels

    good = [(p, s) for p, s in _sessions() if not isinstance(s, Exception)][:limit]
    names = distinct_labels([s.name or s.id for _p, s in good])
    out = []
    for (path, s), name in zip(good, names):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
        method = str(s.spec.get("method") or "lora")
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("  Resume ")
        t.append(name, style="bold")
        t.append(f"  {when}  {METHOD_LABELS.get(method, method)}  {len(s.runs)} run(s)", "dim")
        out.append(Option(t, id=f"session:{path}"))
    return out


def _sessions() -> list[tuple[Any, Any]]:
    from tuitune.core.session import list_sessions

    try:
        return list_sessions()
    except OSError:
        return []


def _runs() -> list[Any]:
    """Runs to attach to, running ones first, newest first (empty until runs exist)."""
    try:
        from tuitune.core.runs import list_runs

        infos = list_runs()
    except Exception:  # noqa: BLE001 - a broken runs directory must not block the wizard
        return []
    return sorted(reversed(infos), key=lambda r: r.state != "running")
