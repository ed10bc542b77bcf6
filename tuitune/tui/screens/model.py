"""Step 4: which base model. The default, a local path or a Hugging Face id, and the catalog
of well-known families with each one's estimated memory for the chosen method."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Select, Static

from tuitune.core.spec import METHODS
from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen


class ModelScreen(StepScreen):
    STEP = "model"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+u", "use_row", "Use selected", id="use-row"),
    ]

    def compose_body(self) -> ComposeResult:
        s = self.tapp.session
        yield Static(
            "'default' is the embedded SmolLM2-135M-Instruct (works offline). Or type a local "
            "directory, or a Hugging Face id (from the local cache unless downloads are on).",
            classes="intro",
        )
        with Horizontal(classes="field-row"):
            yield Label("Model ", classes="field-label")
            yield Input(s.model.ref or "default", id="model-ref", compact=True)
        with Horizontal(classes="field-row"):
            yield Label("Method ", classes="field-label")
            method = self.tapp.spec_dict().get("method", "lora")
            yield Select(
                [(x, x) for x in METHODS],
                value=method,
                allow_blank=False,
                id="model-method",
                compact=True,
            )
        yield Static(id="model-check")
        yield DataTable(id="catalog", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#catalog", DataTable)
        # Fixed widths: the rows arrive from a worker, and auto-sized columns would depend on
        # when they land (and jump as they do).
        table.add_column("model", key="model", width=24)
        table.add_column("memory", key="memory", width=10)
        table.add_column("fit", key="fit", width=5)
        table.add_column("Hugging Face id", key="id", width=40)
        self.refresh_catalog()

    def on_screen_resume(self) -> None:
        self.refresh_catalog()

    @on(Select.Changed, "#model-method")
    def _method_changed(self) -> None:
        self.refresh_catalog()

    def refresh_catalog(self) -> None:
        method = self.query_one("#model-method", Select).value
        self._catalog(str(method))

    @work(thread=True, group="catalog", exclusive=True, exit_on_error=False)
    def _catalog(self, method: str) -> None:
        app = self.tapp
        try:
            from tuitune.tui.hardware_glue import catalog_rows

            rows = catalog_rows(app, method)
        except Exception as e:  # noqa: BLE001
            self.post_message(
                m.CatalogReady(method, [("catalog unavailable", str(e)[:60], "", "")])
            )
            return
        self.post_message(m.CatalogReady(method, rows))

    @on(m.CatalogReady)
    def _catalog_ready(self, message: m.CatalogReady) -> None:
        table = self.query_one("#catalog", DataTable)
        table.clear()
        self.query_one("#model-check", Static).update(
            Text(f"Estimated peak memory for {message.method} on this machine:", style="bold")
        )
        for row in message.rows:
            name, hf_id, memory, verdict = (list(map(str, row)) + [""] * 4)[:4]
            style = {"fits": "green", "tight": "yellow", "no": "red"}.get(verdict, "")
            table.add_row(name, memory, Text(verdict, style=style), hf_id)

    def action_use_row(self) -> None:
        table = self.query_one("#catalog", DataTable)
        if table.row_count:
            row = table.get_row_at(table.cursor_row)
            if row[3]:
                self.query_one("#model-ref", Input).value = str(row[3])

    @on(DataTable.RowSelected, "#catalog")
    def _row_selected(self) -> None:
        self.action_use_row()

    def collect(self) -> bool:
        ref = self.query_one("#model-ref", Input).value.strip() or "default"
        method = str(self.query_one("#model-method", Select).value)
        from tuitune.core.errors import TuituneError
        from tuitune.core.models import looks_like_model_dir

        check = self.query_one("#model-check", Static)
        if ref != "default" and ref.startswith((".", "/", "~")):
            from pathlib import Path

            if not looks_like_model_dir(Path(ref).expanduser()):
                e = TuituneError("not a model directory (no config.json with weights)", path=ref)
                check.update(Text(str(e), style="bold red"))
                return False
        check.update("")
        s = self.tapp.session
        if ref != s.model.ref:
            self.tapp.refresh_recommendation()
        s.model.ref = ref
        s.spec["method"] = method
        self.tapp.answers(self.STEP).update({"ref": ref, "method": method})
        return True

    def collect_quietly(self) -> None:
        s = self.tapp.session
        s.model.ref = self.query_one("#model-ref", Input).value.strip() or "default"
        s.spec["method"] = str(self.query_one("#model-method", Select).value)
