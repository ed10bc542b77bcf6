"""Step 5: the data. Files, detected format, curation report, preview, token lengths, flags.

Everything shown comes from ``tuitune.core.data`` (``prepare_data`` into a preview folder,
``compute_stats``); the run gets its own curated copy when training starts. A column mapping
(``prompt=question,completion=answer``, the session's ``data.columns``) reads files whose
columns are not standard; what the data carries beyond trained text (tools, dropped media,
unused columns) is listed under the summary, and a curation that leaves nothing shows its
report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static, TabbedContent, TabPane

from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen

PAGE = 50
FLAG_STYLE = {"red": "bold red", "amber": "bold yellow", "green": "bold green"}


class DataScreen(StepScreen):
    STEP = "data"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+r", "reload", "Reload", id="reload"),
        Binding("[", "page(-1)", "Prev page", id="prev-page"),
        Binding("]", "page(1)", "Next page", id="next-page"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page = 0
        self._loaded_for: tuple[Any, ...] | None = None
        self._error: tuple[str, Any] = ("", None)

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label("Files ", classes="field-label")
            yield Input(
                ", ".join(self.tapp.session.data.train),
                placeholder="train.jsonl, more.csv (comma-separated)",
                id="files",
            )
        with Horizontal(classes="field-row"):
            yield Label("Columns ", classes="field-label")
            yield Input(
                format_columns(self.tapp.session.data.columns),
                placeholder="only for non-standard columns: prompt=question,completion=answer",
                id="columns",
            )
        yield Static("Reading the data...", id="data-summary")
        with TabbedContent(id="data-tabs"):
            with TabPane("Curation", id="tab-curation"):
                yield VerticalScroll(Static(id="curation"))
            with TabPane("Preview", id="tab-preview"):
                yield DataTable(id="preview", cursor_type="row", zebra_stripes=True)
            with TabPane("Token lengths", id="tab-lengths"):
                yield VerticalScroll(Static(id="lengths"))

    def on_mount(self) -> None:
        super().on_mount()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def _key(self) -> tuple[Any, ...]:
        s = self.tapp.session
        return (
            tuple(s.data.train),
            tuple(s.data.eval),
            s.data.format,
            s.model.ref,
            tuple(sorted(s.data.columns.items())),
        )

    def load(self, force: bool = False) -> None:
        if self._loaded_for == self._key() and not force:
            return
        self._loaded_for = self._key()
        self._error = ("", None)
        self.tapp.cache.pop("data", None)
        self.query_one("#data-summary", Static).update("Reading and curating the data...")
        self._prepare()

    @work(thread=True, group="data", exclusive=True, exit_on_error=False)
    def _prepare(self) -> None:
        app = self.tapp
        s = app.session
        spec = app.spec_dict()
        try:
            from tuitune.core import paths
            from tuitune.core.data.prepare import load_tokenizer
            from tuitune.core.data.stats import compute_stats
            from tuitune.core.models.resolve import resolve_model
            from tuitune.core.training.launch import prepare_session_data

            model = resolve_model(s.model.ref)
            tokenizer = load_tokenizer(model.path, trust_remote_code=s.model.trust_remote_code)
            prepared = prepare_session_data(
                s,
                paths.cache_dir() / "preview" / s.id,
                model,
                seed=int(spec.get("seed", 42)),
                max_length=int(spec.get("max_length", 1024)),
                tokenizer=tokenizer,
            )
            rows = _read_jsonl(prepared.train_file)
            dedup = sum(st.dropped for st in prepared.report.steps if st.name.startswith("dedup"))
            stats = compute_stats(
                rows,
                prepared.data_format,
                tokenizer=tokenizer,
                max_length=int(spec.get("max_length", 1024)),
                eval_rows=prepared.eval_rows,
                duplicates_removed=dedup,
            )
        except Exception as e:  # noqa: BLE001
            from tuitune.core.data.curation import CurationEmptyError

            app.fail("data", e)
            report = e.report if isinstance(e, CurationEmptyError) else None
            app.call_from_thread(self._failed, str(e).splitlines()[0] if str(e) else "", report)
            self.post_message(m.DataPrepared(None, [], None))
            return
        app.cache["tokenizer"] = (model.path, tokenizer)
        self.post_message(m.DataPrepared(prepared, rows, stats))

    def _failed(self, error: str, report: Any) -> None:
        """Keep the reason (and the curation report, when curation removed everything)."""
        self._error = (error, report)

    @on(m.DataPrepared)
    def _prepared(self, message: m.DataPrepared) -> None:
        summary = self.query_one("#data-summary", Static)
        if message.prepared is None:
            error, report = self._error
            t = Text("The data could not be read: fix the files and Reload (^r).", style="bold red")
            if error:
                t.append(f"\n{error}", style="red")
            summary.update(t)
            if report is not None:
                self.query_one("#curation", Static).update(_curation_text(report))
            return
        self.tapp.cache["data"] = message
        p, stats = message.prepared, message.stats
        t = Text()
        t.append("Format: ", style="bold")
        t.append(f"{p.guess.name} -> {p.data_format}")
        t.append(f" ({p.guess.confidence:.0%}: {p.guess.reason})\n", style="dim")
        t.append(f"{p.train_rows} train / {p.eval_rows} validation rows", style="bold")
        t.append(f"  ({p.report.rows_in} read, {p.report.rows_in - p.report.rows_out} removed)")
        for f in stats.flags:
            t.append("\n")
            t.append(f"[{f.level}] ", style=FLAG_STYLE.get(f.level, "bold"))
            t.append(f.message)
        for mapping in p.mappings:
            t.append(f"\n[columns] {mapping}", style="dim")
        for w in p.warnings:
            t.append(f"\n[warning] {w}", style="yellow")
        for kept in p.kept:
            t.append(f"\n[kept] {kept}", style="dim")
        summary.update(t)
        self.query_one("#curation", Static).update(_curation_text(p.report))
        self.query_one("#lengths", Static).update(_histogram_text(stats))
        self.page = 0
        self._fill_preview()

    def _fill_preview(self) -> None:
        data = self.tapp.cache.get("data")
        table = self.query_one("#preview", DataTable)
        table.clear(columns=True)
        if not data:
            return
        rows = data.rows
        cols = _columns(rows[0]) if rows else []
        table.add_column("#", key="#")
        for c in cols:
            table.add_column(c, key=c)
        start = self.page * PAGE
        for i, row in enumerate(rows[start : start + PAGE], start=start + 1):
            flat = _flatten(row)
            table.add_row(str(i), *[_snip(flat.get(c, "")) for c in cols])
        pages = max(1, -(-len(rows) // PAGE))
        self.query_one("#tab-preview", TabPane).border_title = f"page {self.page + 1}/{pages}"
        self.set_status(f"preview page {self.page + 1}/{pages}  ([ ] to page)")

    def action_page(self, delta: int) -> None:
        data = self.tapp.cache.get("data")
        if not data:
            return
        pages = max(1, -(-len(data.rows) // PAGE))
        self.page = max(0, min(pages - 1, self.page + delta))
        self._fill_preview()

    def action_reload(self) -> None:
        self._store_files()
        self.load(force=True)

    @on(Input.Submitted, "#files")
    def _files_submitted(self) -> None:
        self.action_reload()

    @on(Input.Submitted, "#columns")
    def _columns_submitted(self) -> None:
        self.action_reload()

    def _store_files(self) -> None:
        raw = self.query_one("#files", Input).value
        self.tapp.session.data.train = [p.strip() for p in raw.split(",") if p.strip()]
        from tuitune.core.data.mapping import parse_columns
        from tuitune.core.errors import TuituneError

        text = self.query_one("#columns", Input).value
        try:
            mapping = parse_columns(text)
        except TuituneError as e:
            self.notify(e.format(), severity="error")
            return
        columns = dict(mapping.columns, **mapping.tags) if mapping else {}
        self.tapp.session.data.columns = columns

    def collect(self) -> bool:
        self._store_files()
        if self._loaded_for != self._key():
            self.load()
            self.notify("the files changed: check the new report, then Next")
            return False
        data = self.tapp.cache.get("data")
        if data is None:
            self.notify("the data is not ready yet (or could not be read)", severity="warning")
            return False
        p, stats = data.prepared, data.stats
        self.tapp.answers(self.STEP).update(
            {
                "format": p.guess.name,
                "data_format": p.data_format,
                "train_rows": p.train_rows,
                "eval_rows": p.eval_rows,
                "flags": [f"{f.level}: {f.message}" for f in stats.flags],
            }
        )
        self.tapp.session.spec["data_format"] = p.data_format
        return True

    def collect_quietly(self) -> None:
        self._store_files()


def format_columns(columns: dict[str, str]) -> str:
    """The session's column mapping as the Columns field shows it."""
    return ",".join(f"{k}={v}" for k, v in columns.items())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _columns(row: dict[str, Any]) -> list[str]:
    return list(_flatten(row))


def _flatten(row: dict[str, Any]) -> dict[str, str]:
    """A row as columns: chat turns by role (last of each), other fields as text."""
    out: dict[str, str] = {}
    for key, value in row.items():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and "role" in v for v in value)
        ):
            for turn in value:
                text = str(turn.get("content", ""))
                calls = turn.get("tool_calls") or []
                if calls:
                    names = ", ".join(str(c.get("function", {}).get("name")) for c in calls)
                    text = (text + " " if text else "") + f"[calls {names}]"
                out[str(turn.get("role", key))] = text
        else:
            out[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def _snip(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "..."


def _curation_text(report: Any) -> Text:
    t = Text()
    t.append(f"{report.rows_in} rows in, {report.rows_out} kept\n", style="bold")
    for st in report.steps:
        t.append(st.summary() + "\n", style="" if (st.changed or st.dropped) else "dim")
        for ex in st.examples:
            t.append(f"   {ex.get('origin', '')}: ", style="dim")
            if ex.get("reason"):
                t.append(f"{ex['reason']}: ", style="yellow")
            t.append(ex.get("before", "")[:100])
            if ex.get("after"):
                t.append("  ->  ", style="dim")
                t.append(ex["after"][:100])
            t.append("\n")
    return t


def _histogram_text(stats: Any, width: int = 40) -> Text:
    t = Text()
    if not stats.token_histogram:
        t.append("No token lengths (no tokenizer).")
        return t
    t.append(
        f"tokens per example: min {stats.token_min}, median {stats.token_median}, "
        f"p95 {stats.token_p95}, max {stats.token_max}\n",
        style="bold",
    )
    top = max(c for _, _, c in stats.token_histogram) or 1
    for lo, hi, count in stats.token_histogram:
        bar = "#" * max(1 if count else 0, round(width * count / top))
        t.append(f"{lo:>6}-{hi:<6} ")
        t.append(bar.ljust(width), style="cyan")
        t.append(f" {count}\n")
    if stats.over_max_length:
        t.append(f"{stats.over_max_length} over max_length", style="yellow")
    return t
