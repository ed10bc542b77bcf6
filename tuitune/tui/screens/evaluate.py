"""Step 9: before/after evidence, generations side by side, forgetting check, export."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tuitune.tui.screens.base import StepScreen

LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "forgetting")


class EvaluateScreen(StepScreen):
    STEP = "evaluate"
    NEXT_LABEL = "Finish"
    # Chat first: at 80 columns the footer shows these in order, and none may be cut.
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("t", "chat", "Chat", id="chat"),
        Binding("e", "evaluate", "Evaluate again", id="evaluate", show=False),
        Binding("a", "export('adapter')", "Adapter", id="export-adapter"),
        Binding("m", "export('merged')", "Merged", id="export-merged"),
        Binding("c", "export('configs')", "Configs", id="export-configs"),
        # Ship (tuitune.core.ship.quantized): listed under the results rather than in the footer.
        Binding("4", "export('4bit')", "Export 4-bit", id="export-4bit", show=False),
        Binding("8", "export('8bit')", "Export 8-bit", id="export-8bit", show=False),
        Binding("g", "export('gguf')", "Export GGUF", id="export-gguf", show=False),
        Binding("r", "export('card')", "Model card", id="export-card", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown: Any = None
        self._state: tuple[Any, ...] | None = None
        self._auto_tried = False  # an attached run finishes loading after mount: start once
        self._confirm_finish = False

    def compose_body(self) -> ComposeResult:
        yield Static(id="eval-status")
        with VerticalScroll(id="eval-scroll"):
            yield DataTable(id="summary", cursor_type="row", zebra_stripes=True)
            yield Static(id="eval-notes")
            yield Static("Generations (same prompts, base vs fine-tuned)", classes="section")
            yield Static(id="generations")
            yield Static(id="eval-paths")

    def on_mount(self) -> None:
        super().on_mount()
        summary = self.query_one("#summary", DataTable)
        summary.add_columns("metric", "n", "before", "after", "change [95% CI], verdict")
        self.redraw()
        self.set_interval(0.5, self.redraw)
        self._maybe_start()

    def on_screen_resume(self) -> None:
        self._maybe_start()
        self.redraw()

    def _maybe_start(self) -> None:
        """Arriving here with a finished run and no results starts the evaluation."""
        app = self.tapp
        view = app.run_view
        if view is not None and view.finished and app.eval_results is None and not app.eval_status:
            self._auto_tried = True
            app.start_evaluation()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.tapp
        if action == "evaluate":  # a stopped run too: its last checkpoint is scored
            return app.run_view is not None and app.run_view.evaluable and not app.eval_status
        if action in ("export", "chat"):
            return app.run_view is not None and app.run_view.finished
        return True

    def action_evaluate(self) -> None:
        self.tapp.start_evaluation()

    def action_export(self, what: str) -> None:
        self.tapp.start_export(what)

    def action_chat(self) -> None:
        """The playground: base and tuned answer side by side (tuitune.tui.screens.chat)."""
        from tuitune.tui.screens.chat import ChatScreen

        view = self.tapp.run_view
        if view is not None and view.finished:
            self.app.push_screen(ChatScreen(view.run))

    def action_next(self) -> None:
        """Finish: save, and leave the paths on the terminal after the app closes."""
        app = self.tapp
        if app.eval_status and not self._confirm_finish:
            # the evaluation's worker thread holds the app open until its child ends
            self._confirm_finish = True
            self.notify(
                "an evaluation is still running: Finish waits for it to end (its report goes "
                "into the run). Press Finish again to close and wait.",
                severity="warning",
                timeout=10,
            )
            return
        app.save_session()
        app.finish_lines = finish_lines(app)
        app.exit(0)

    def redraw(self) -> None:
        app = self.tapp
        status = self.query_one("#eval-status", Static)
        view = app.run_view
        if app.eval_status:
            if str(status.render()) != f"Evaluating: {app.eval_status}":
                status.update(Text(f"Evaluating: {app.eval_status}", style="bold"))
        elif app.eval_results is not None:
            status.update(Text(f"Evaluated run {view.run.id if view else ''}", style="bold"))
        elif view is not None and view.evaluable and not view.finished:
            status.update("The run stopped: e evaluates its last checkpoint.")
        elif view is None or not view.finished:
            status.update("No finished run yet: train one on the previous step (Esc).")
        state = (bool(app.eval_status), view.finished if view else None)
        if not self._auto_tried and view is not None and view.finished:
            self._maybe_start()
        if state != self._state:
            self._state = state
            self.refresh_bindings()
        result = app.eval_results
        if result is None or result is self._shown:
            return
        self._shown = result
        summary = self.query_one("#summary", DataTable)
        summary.clear()
        comps = list(getattr(result.results, "comparisons", None) or [])
        for i, row in enumerate(_rows_with_intervals(comps) or result.rows):
            metric, n, before, after, change = (list(map(str, row)) + [""] * 5)[:5]
            verdict = getattr(comps[i], "verdict", None) if len(comps) == len(result.rows) else None
            summary.add_row(metric, n, before, after, _coloured(metric, change, verdict))
        gens = Text()
        for prompt, base, tuned in _generations(result.results):
            gens.append("prompt  ", style="bold")
            gens.append(_cell(prompt) + "\n")
            gens.append("base    ", style="bold red")
            gens.append(_cell(base) + "\n")
            gens.append("tuned   ", style="bold green")
            gens.append(_cell(tuned) + "\n\n")
        self.query_one("#generations", Static).update(gens or Text("(no generations)", style="dim"))
        results = result.results
        notes = Text()
        forgetting = getattr(results, "forgetting", None) or {}
        if forgetting:
            notes.append("Forgetting check: ", style="bold")
            notes.append(_forgetting_text(forgetting) + "\n")
        for w in getattr(results, "warnings", None) or []:
            notes.append(f"! {w}\n", style="bold yellow")
        self.query_one("#eval-notes", Static).update(notes)
        paths = Text()
        if result.report:
            paths.append(f"report: {result.report}\n")
        if view is not None:
            paths.append(f"adapter: {view.run.adapter}\n")
            paths.append(
                "t chat with base and tuned side by side; e evaluates again; ship: a adapter, "
                "m merged, "
                "4 / 8 bitsandbytes 4-/8-bit, g GGUF, r model card, c trainer configs",
                style="dim",
            )
        self.query_one("#eval-paths", Static).update(paths)


def _rows_with_intervals(comps: list[Any]) -> list[tuple[str, ...]]:
    """The summary rows with each change's 95% interval (core.evaluation.report formats both)."""
    if not comps:
        return []
    from tuitune.core.evaluation.figures import comparison_rows

    try:
        return comparison_rows(comps, interval=True)
    except AttributeError:  # results of another shape: the rows the App computed
        return []


def finish_lines(app: Any) -> list[str]:
    """Where everything is: the session, the report, the adapter and each export."""
    out = ["tuitune: finished."]
    s = app.session
    if s.path:
        out.append(f"  session   {s.path}  (replay: tuitune replay {s.path})")
    results = app.eval_results
    if results is not None and results.report:
        out.append(f"  report    {results.report}")
    view = app.run_view
    if view is not None:
        out.append(f"  run       {view.run.root}")
        if view.run.adapter.exists():
            out.append(f"  adapter   {view.run.adapter}")
    for what, path in (app.answers("evaluate").get("exports") or {}).items():
        out.append(f"  {what:<9} {path}")
    if view is not None and not (app.answers("evaluate").get("exports")):
        out.append(f"  export    tuitune export {view.run.root} -f merged (or adapter, gguf, ...)")
    return out


def _coloured(metric: str, change: str, verdict: str | None = None) -> Text:
    """Green for an improvement, red for a regression, yellow when not significant.

    The evaluation's own verdict decides when there is one; otherwise the sign and the
    metric's name (losses and perplexities are better lower).
    """
    if verdict is not None:
        style = {"improved": "bold green", "worse": "bold red", "not significant": "yellow"}
        return Text(change, style=style.get(verdict, ""))
    s = change.strip()
    if not s or s[0] not in "+-":
        return Text(change)
    up = s[0] == "+"
    better = up != any(k in metric.lower() for k in LOWER_IS_BETTER)
    return Text(change, style="green" if better else "red")


def _forgetting_text(forgetting: dict[str, Any]) -> str:
    """The forgetting verdict as the evaluation computed it, with its bound."""
    ok = forgetting.get("within_bound", True)
    parts = ["within its bound" if ok else "OUTSIDE its bound"]
    if forgetting.get("perplexity_rise") is not None:
        parts.append(f"general-text perplexity {float(forgetting['perplexity_rise']):+.1%}")
    if forgetting.get("bound"):
        parts.append(str(forgetting["bound"]))
    return "; ".join(parts)


def _cell(value: Any, width: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "..."


def _generations(results: Any) -> list[tuple[str, str, str]]:
    """Side-by-side rows from the evaluation results (whatever shape the core gives)."""
    for name in ("generations", "samples", "examples"):
        items = getattr(results, name, None)
        if items:
            break
    else:
        return []
    out = []
    for g in list(items)[:20]:
        get = g.get if isinstance(g, dict) else lambda k, d="", g=g: getattr(g, k, d)
        out.append(
            (get("prompt", ""), get("before", get("base", "")), get("after", get("tuned", "")))
        )
    return out
