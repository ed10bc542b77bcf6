"""Step 1: a new session (quickstart pre-filled), resume a saved one, or attach to a run.

The runs are listed by a thread worker: each costs its run.json and the tail of its
events.jsonl (core.runs.process.run_info), but a runs folder with hundreds of long runs must not
freeze the first screen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
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
        ol.highlighted = 0
        self._list_runs()

    @work(thread=True, group="start-runs", exclusive=True, exit_on_error=False)
    def _list_runs(self) -> None:
        infos = _runs()[:6]
        self.app.call_from_thread(self._add_runs, infos)

    def _add_runs(self, infos: list[Any]) -> None:
        ol = self.query_one(OptionList)
        for info in infos:
            if _has(ol, info):  # refresh_choices ran twice before the worker answered
                continue
            progress = f"step {info.step or 0}/{info.total_steps or '?'}"
            loss = f"  loss {info.last_loss:.3f}" if info.last_loss is not None else ""
            label = f"  Attach {info.run.id}  {info.state}  {info.method}  {progress}{loss}"
            ol.add_option(Option(label, id=f"run:{info.run.root}"))

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
            from tuitune.core.runs.rundir import RunDir

            # the run's own session comes with it (App.attach_run), never a default
            app.attach_run(RunDir(Path(choice.split(":", 1)[1])))
            app.goto("train")
        else:
            app.answers("start")["choice"] = "new"
            app.next_step(self.STEP)


def _session_options(limit: int = 6) -> list[Option]:
    """Saved sessions, newest first: date, method and a name no other entry has."""
    from tuitune.core.models.session_names import METHOD_LABELS, distinct_labels

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
        from tuitune.core.runs.process import list_runs

        infos = list_runs()
    except Exception:  # noqa: BLE001 - a broken runs directory must not block the wizard
        return []
    return sorted(reversed(infos), key=lambda r: r.state != "running")


def _has(ol: OptionList, info: Any) -> bool:
    from textual.widgets.option_list import OptionDoesNotExist

    try:
        ol.get_option(f"run:{info.run.root}")
    except OptionDoesNotExist:
        return False
    return True
