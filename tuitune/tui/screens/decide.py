"""Step 2: fine-tune, RAG or prompt engineering? The seed guide's tree and flags.

Red flags turn a fine-tuning verdict into "not yet" (``core.decide.decision``); the two count flags
follow the example count the Data step measured, once it has; going on against the verdict
takes a second Next and is recorded in the session.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tuitune.core.decide import decision
from tuitune.tui.screens.base import StepScreen
from tuitune.tui.widgets.yes_box import YesBox

COLOUR = {"finetune": "green", "finetune_small": "green", "not_yet": "yellow"}


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
        with VerticalScroll(id="verdict-box"):
            yield Static(id="verdict")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_measured()
        self.show_verdict()

    def on_screen_resume(self) -> None:
        self.show_measured()
        self.show_verdict()

    def measured(self) -> int | None:
        """Examples the Data step counted (kept after curation), once it has run."""
        return self.tapp.measured_examples()

    def show_measured(self) -> None:
        """The count flags follow the measurement: set, labelled, and not editable."""
        n = self.measured()
        if n is None:
            return
        counted = decision.example_count_flags(n)
        texts = {f.key: f.text for f in (*decision.GREEN_FLAGS, *decision.RED_FLAGS)}
        for key in decision.COUNT_FLAGS:
            prefix = "g" if key == "examples_500" else "r"
            box = self.query_one(f"#{prefix}-{key}", YesBox)
            with box.prevent(YesBox.Changed):
                box.value = counted[key]
            box.label = f"{texts[key]}  (measured on Data: {n})"
            box.disabled = True

    def current(self) -> tuple[dict[str, bool], dict[str, bool]]:
        answers = {q.key: self.query_one(f"#q-{q.key}", YesBox).value for q in decision.QUESTIONS}
        flags = {f.key: self.query_one(f"#g-{f.key}", YesBox).value for f in decision.GREEN_FLAGS}
        flags |= {f.key: self.query_one(f"#r-{f.key}", YesBox).value for f in decision.RED_FLAGS}
        return answers, decision.with_measured(flags, self.measured())

    def on_checkbox_changed(self, event: YesBox.Changed) -> None:
        self._confirm_against = False
        self.show_verdict()

    def show_verdict(self) -> None:
        v = decision.decide(*self.current())
        t = Text()
        t.append("Verdict: ", style="bold")
        t.append(v.title, style=f"bold {COLOUR.get(v.approach, 'red')}")
        t.append(f"  green {len(v.green)}", style="green")
        t.append(f" red {len(v.red)}", style="red")
        if v.points_to:
            t.append(f"  (points to: {decision.APPROACHES[v.points_to]})", style="bold")
        for r in v.reasons:
            t.append(f"\n - {r}")
        for c in v.contradictions:
            t.append(f"\n ! {c}", style="bold yellow")
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
        self.tapp.session.answers[self.STEP] = self._record(answers, flags, proceed=True)
        return True

    def collect_quietly(self) -> None:
        answers, flags = self.current()
        self.tapp.session.answers[self.STEP] = self._record(answers, flags, proceed=False)

    def _record(self, answers: dict[str, bool], flags: dict[str, bool], *, proceed: bool) -> dict:
        saved = self.tapp.answers(self.STEP)
        rec = decision.record(answers, flags, proceed=proceed, measured_examples=self.measured())
        if "note" in saved:
            rec["note"] = saved["note"]
        return rec
