"""Step 4: which base model. The default, a local folder or a Hugging Face id, checked as soon
as it is typed (``core.models.resolve.check_model`` in a worker: folder, HF cache, hub where
reachable, the catalogue's bundled config), and the catalogue sized with this session's plan.

An unusable reference is refused here, with the fix, not later on the Data step. The
catalogue row of the embedded default stands for ``default`` (picking it keeps ``default``,
which works offline). When Decide said "fine-tune a smaller model", the smallest models that
fit come first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Checkbox, DataTable, Input, Label, Select, Static

from tuitune.core.spec import METHODS
from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen

CHECK_DELAY = 0.6  # seconds of no typing before the reference is checked


class ModelScreen(StepScreen):
    STEP = "model"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+u", "use_row", "Use row", id="use-row"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checked: m.ModelChecked | None = None
        self._advance_after_check = False
        self._timer: Any = None

    def compose_body(self) -> ComposeResult:
        s = self.tapp.session
        yield Static(
            "'default' is the embedded SmolLM2-135M-Instruct (works offline). Or a local "
            "folder, or a Hugging Face id (the local cache, or the hub where reachable).",
            classes="intro",
        )
        with Horizontal(classes="field-row"):
            yield Label("Model ", classes="field-label")
            yield Input(s.model.ref or "default", id="model-ref", compact=True)
        with Horizontal(classes="field-row"):
            yield Label("Method ", classes="field-label")
            method = str(s.spec.get("method") or self.tapp.spec_dict().get("method", "lora"))
            yield Select(
                [(x, x) for x in METHODS],
                value=method if method in METHODS else "lora",
                allow_blank=False,
                id="model-method",
                compact=True,
            )
        with Horizontal(classes="field-row"):
            yield Label("Code ", classes="field-label")
            yield Checkbox(
                "trust_remote_code (run Python code shipped with the model)",
                value=s.model.trust_remote_code,
                id="model-trust",
                compact=True,
            )
        yield Static(trust_note(s), id="model-trust-note")
        yield Static(id="model-status")
        yield Static("Planning...", id="model-plan")
        yield Static(id="model-check")
        yield DataTable(id="catalog", cursor_type="row", zebra_stripes=True)

    @on(Checkbox.Changed, "#model-trust")
    def _trust_changed(self, event: Checkbox.Changed) -> None:
        """Ticking it is the user's confirmation (also for a session from elsewhere)."""
        session = self.tapp.session
        if session.model.trust_remote_code == bool(event.value):
            return
        session.model.trust_remote_code = bool(event.value)
        if event.value:
            session.answers.pop("trust_remote_code_cleared", None)
            self.notify(
                "trust_remote_code on: the model's own Python code will run when it loads",
                severity="warning",
            )
        self.query_one("#model-trust-note", Static).update(trust_note(session))
        self.tapp.save_session()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#catalog", DataTable)
        # Fixed widths: the rows arrive from a worker, and auto-sized columns would depend on
        # when they land (and jump as they do).
        table.add_column("model", key="model", width=16)
        table.add_column("memory", key="memory", width=10)
        table.add_column("fit", key="fit", width=8)
        table.add_column("Hugging Face id", key="id", width=40)
        self.check_ref()
        self.refresh_catalog()

    def on_screen_resume(self) -> None:
        self.refresh_catalog()

    # -- the reference, checked in a worker ---------------------------------------------------
    def ref(self) -> str:
        return self.query_one("#model-ref", Input).value.strip() or "default"

    @on(Input.Changed, "#model-ref")
    def _ref_changed(self) -> None:
        self.checked = None
        self.set_status(Text("checking...", style="dim"))
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(CHECK_DELAY, self.check_ref)

    @on(Input.Submitted, "#model-ref")
    def _ref_submitted(self) -> None:
        self.action_next()

    def check_ref(self) -> None:
        self._check(self.ref())

    @work(thread=True, group="model-check", exclusive=True, exit_on_error=False)
    def _check(self, ref: str) -> None:
        from tuitune.core.errors import TuituneError
        from tuitune.core.models.resolve import check_model

        try:
            c = check_model(ref)
        except TuituneError as e:
            self.post_message(m.ModelChecked(ref, "", "", str(e)))
            return
        except Exception as e:  # noqa: BLE001 - shown as one line, the reference refused
            self.post_message(m.ModelChecked(ref, "", "", f"{type(e).__name__}: {e}"))
            return
        detail = c.detail if c.trainable else f"! {c.detail}"
        self.post_message(m.ModelChecked(ref, c.source, detail, ""))

    @on(m.ModelChecked)
    def _checked(self, message: m.ModelChecked) -> None:
        if message.ref != self.ref():
            return  # typed on since: a newer check follows
        self.checked = message
        status = self.query_one("#model-status", Static)
        if message.error:
            status.update(Text(f"Refused: {message.error}", style="bold red"))
            self.set_status(Text("model refused", style="bold red"))
            self._advance_after_check = False
            return
        style = "yellow" if message.detail.startswith("!") else "green"
        status.update(Text(f"{message.source}: {message.detail.lstrip('! ')}", style=style))
        self.set_status("")
        if self._advance_after_check:
            self._advance_after_check = False
            self.action_next()
        else:
            self.refresh_catalog()

    # -- the plan and the catalogue -----------------------------------------------------------
    @on(Select.Changed, "#model-method")
    def _method_changed(self) -> None:
        self.refresh_catalog()

    def refresh_catalog(self) -> None:
        self._catalog(str(self.query_one("#model-method", Select).value), self.ref())

    @work(thread=True, group="catalog", exclusive=True, exit_on_error=False)
    def _catalog(self, method: str, ref: str) -> None:
        import dataclasses

        from tuitune.tui import hardware_glue as glue

        app = self.tapp
        try:
            session = app.session
            spec = {**session.spec, "method": method}
            probe_app = _AppView(
                app, dataclasses.replace(session, spec=spec, model=_model(session, ref))
            )
            plan = glue.plan_for(probe_app)
            timing = glue.plan_time(probe_app, plan)
            rows = glue.catalog_rows_for_plan(probe_app, plan)
        except Exception as e:  # noqa: BLE001
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.post_message(m.PlanComputed(None, None, text, {"method": method}))
            return
        self.post_message(
            m.PlanComputed(plan, timing, "", {"method": method, "rows": rows, "ref": ref})
        )

    @on(m.PlanComputed)
    def _planned(self, message: m.PlanComputed) -> None:
        from tuitune.tui.hardware_glue import plan_memory_text

        box = self.query_one("#model-plan", Static)
        table = self.query_one("#catalog", DataTable)
        if message.plan is None:
            box.update(Text(f"No plan for {message.extra.get('method')}: {message.error}", "red"))
            return
        box.update(plan_memory_text(message.plan, message.timing))
        rows = list(message.extra["rows"])
        smaller = self.smaller_model()
        if smaller:
            rows.sort(key=lambda r: (r[3] != "fits", _params(r[0])))
        table.clear()
        for name, hf_id, memory, verdict in rows:
            style = {"fits": "green", "tight": "yellow", "slow": "yellow"}.get(verdict, "red")
            table.add_row(name, memory, Text(verdict, style=style if verdict else ""), hf_id)
        hint = self.query_one("#model-check", Static)
        if smaller:
            first = next((r for r in rows if r[3] == "fits"), None)
            hint.update(
                Text(
                    "Decide said: fine-tune a smaller model (a small tuned model beats a large "
                    "prompted one): smallest that fit first"
                    + (f", e.g. {first[0]}." if first else "."),
                    style="bold",
                )
            )
        else:
            hint.update(
                Text(f"Catalogue, sized like this plan ({message.extra['method']}):", "bold")
            )

    def smaller_model(self) -> bool:
        """Decide's verdict (or its tree under a "not yet") was "fine-tune a smaller model"."""
        saved = self.tapp.session.answers.get("decide") or {}
        return "finetune_small" in (saved.get("verdict"), saved.get("tree_verdict"))

    def action_use_row(self) -> None:
        from tuitune.tui.hardware_glue import default_hf_id

        table = self.query_one("#catalog", DataTable)
        if table.row_count:
            row = table.get_row_at(table.cursor_row)
            if row[3]:
                hf_id = str(row[3])
                # The embedded default's row keeps 'default': the same model, and it works
                # offline (its hub id would need a download).
                self.query_one("#model-ref", Input).value = (
                    "default" if hf_id == default_hf_id() else hf_id
                )

    @on(DataTable.RowSelected, "#catalog")
    def _row_selected(self) -> None:
        self.action_use_row()

    def collect(self) -> bool:
        ref = self.ref()
        method = str(self.query_one("#model-method", Select).value)
        if self.checked is None or self.checked.ref != ref:
            self._advance_after_check = True
            self.set_status(Text("checking the model...", style="dim"))
            self._check(ref)
            return False
        if self.checked.error:
            self.query_one("#model-ref", Input).focus()
            self.notify(self.checked.error, severity="error", timeout=10)
            return False
        s = self.tapp.session
        if ref != s.model.ref:
            self.tapp.refresh_recommendation()
        s.model.ref = ref
        s.spec["method"] = method
        self.tapp.answers(self.STEP).update(
            {"ref": ref, "method": method, "source": self.checked.source}
        )
        return True

    def collect_quietly(self) -> None:
        s = self.tapp.session
        s.model.ref = self.ref()
        s.spec["method"] = str(self.query_one("#model-method", Select).value)


class _AppView:
    """The app as ``hardware_glue`` sees it, with a session the screen is trying out."""

    def __init__(self, app: Any, session: Any) -> None:
        self.session = session
        self.cache = app.cache
        self.probe_kwargs = app.probe_kwargs


def _model(session: Any, ref: str) -> Any:
    import dataclasses

    return dataclasses.replace(session.model, ref=ref)


def _params(name: str) -> float:
    """'Qwen2.5 0.5B' -> 0.5e9, for sorting by size."""
    size = name.rsplit(" ", 1)[-1].upper()
    scale = {"M": 1e6, "B": 1e9}.get(size[-1:], 1.0)
    try:
        return float(size[:-1]) * scale
    except ValueError:
        return float("inf")


def trust_note(session: Any) -> Text:
    """What trust_remote_code means for this session, said before anything loads."""
    cleared = session.answers.get("trust_remote_code_cleared") or {}
    if session.model.trust_remote_code:
        return Text(
            "ON: Python code shipped with the model will run on this machine when it loads.",
            style="bold yellow",
        )
    if cleared:
        return Text(
            f"Turned off: it was on in {cleared.get('from', 'the session this came from')}, "
            "a session from elsewhere. Tick it only if you trust that model's code.",
            style="yellow",
        )
    return Text("Off: only model code that ships with transformers runs.", style="dim")
