"""Step 2: fine-tune, RAG or prompt engineering? The seed guide's tree and flags."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tuitune.core import decision
from tuitune.tui.screens.base import StepScreen
from tuitune.tui.widgets.yes_box import YesBox


class DecideScreen(StepScreen):
    STEP = "decide"

    def __init__(self) -> None:
        super().__init__()
        self._confirm_against = False

    def compose_body(self) -> ComposeResult:
        saved = self.tapp.answers(self.STEP)
        answers, flags = decision.saved_answers(saved)
        with VerticalScroll(id="questions"):
            yield Static("The questions, in order (the first yes decides):", classes="section")
            for q in decision.QUESTIONS:
                yield YesBox(q.text, bool(answers.get(q.key)), id=f"q-{q.key}", compact=True)
            yield Static("Green flags for fine-tuning:", classes="section green")
            for f in decision.GREEN_FLAGS:
                yield YesBox(f.text, bool(flags.get(f.key)), id=f"g-{f.key}", compact=True)
            yield Static("Red flags (don't fine-tune yet):", classes="section red")
            for f in decision.RED_FLAGS:
                yield YesBox(f.text, bool(flags.get(f.key)), id=f"r-{f.key}", compact=True)
        yield Static(id="verdict")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_verdict()

    def current(self) -> tuple[dict[str, bool], dict[str, bool]]:
        answers = {q.key: self.query_one(f"#q-{q.key}", YesBox).value for q in decision.QUESTIONS}
        flags = {f.key: self.query_one(f"#g-{f.key}", YesBox).value for f in decision.GREEN_FLAGS}
        flags |= {f.key: self.query_one(f"#r-{f.key}", YesBox).value for f in decision.RED_FLAGS}
        return answers, flags

    def on_checkbox_changed(self, event: YesBox.Changed) -> None:
        self._confirm_against = False
        self.show_verdict()

    def show_verdict(self) -> None:
        v = decision.decide(*self.current())
        t = Text()
        colour = "green" if v.fine_tune and not v.caution else ("yellow" if v.fine_tune else "red")
        t.append("Verdict: ", style="bold")
        t.append(v.title, style=f"bold {colour}")
        t.append(f"   green flags {len(v.green)}", style="green")
        t.append(f"  red flags {len(v.red)}", style="red")
        for r in v.reasons:
            t.append(f"\n - {r}")
        if not v.fine_tune:
            t.append(
                "\n Next goes on against this advice (recorded in the session)."
                if not self._confirm_against
                else "\n Press Next again to fine-tune anyway.",
                style="italic",
            )
        self.query_one("#verdict", Static).update(t)

    def collect(self) -> bool:
        answers, flags = self.current()
        v = decision.decide(answers, flags)
        if not v.fine_tune and not self._confirm_against:
            self._confirm_against = True
            self.show_verdict()
            return False
        self.tapp.session.answers[self.STEP] = decision.record(answers, flags, proceed=True)
        return True

    def collect_quietly(self) -> None:
        answers, flags = self.current()
        rec = decision.record(answers, flags, proceed=False)
        self.tapp.session.answers[self.STEP] = rec
