"""Step 6: one example exactly as the trainer sees it, through the model's chat template.

Trained tokens are bold and underlined (green), masked (-100) tokens dim, special tokens
visible in brackets' colour; the labels come from TRL's own preparation
(``core.data.training_view.label_preview``), not from a re-implementation. Every assistant
turn is trained, tool calls included (or as per-turn weights say); the info line counts the
example's trained and masked turns, and the plan's notes say how the turns were found.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen

EXAMPLES = 5
TRAINED = "bold underline green"
MASKED = "dim"
SPECIAL = "bold magenta"


class TemplateScreen(StepScreen):
    STEP = "template"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("[", "example(-1)", "Prev example", id="prev-example"),
        Binding("]", "example(1)", "Next example", id="next-example"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self.preview: dict[str, Any] | None = None
        self._for: Any = None

    def compose_body(self) -> ComposeResult:
        yield Static("Rendering an example through the chat template...", id="template-info")
        with VerticalScroll(id="template-scroll"):
            yield Static(id="rendered")

    def on_mount(self) -> None:
        super().on_mount()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def load(self) -> None:
        app = self.tapp
        data = app.cache.get("data")
        tok = app.cache.get("tokenizer")
        key = (
            id(data),
            app.spec_dict().get("completion_only_loss"),
            app.spec_dict().get("max_length"),
        )
        if data is None or tok is None:
            self.query_one("#template-info", Static).update(
                "No data yet: go back to the Data step (Esc) and let it finish reading."
            )
            return
        if key == self._for:
            return
        self._for = key
        self.query_one("#template-info", Static).update("Rendering through TRL's preparation...")
        self._render_example(data, tok[1])

    @work(thread=True, group="template", exclusive=True, exit_on_error=False)
    def _render_example(self, data: Any, tokenizer: Any) -> None:
        app = self.tapp
        spec = app.spec_dict()
        try:
            from tuitune.core.data.templates import chat_template_of
            from tuitune.core.data.training_view import label_preview

            had_template = chat_template_of(tokenizer) is not None
            rows = data.rows
            if data.prepared.data_format == "unpaired_preference":
                rows = [r for r in rows if r.get("label") is not False]
            rows = rows[:EXAMPLES]
            previews, plan = label_preview(
                rows,
                tokenizer,
                data_format=data.prepared.data_format,
                completion_only_loss=bool(spec.get("completion_only_loss", True)),
                max_length=int(spec.get("max_length", 1024)),
            )
            special = set(getattr(tokenizer, "all_special_ids", []) or [])
            eos = tokenizer.eos_token_id
        except Exception as e:  # noqa: BLE001
            app.fail("template preview", e)
            return
        self.post_message(
            m.TemplateRendered(
                {
                    "previews": previews,
                    "plan": plan,
                    "special": special,
                    "eos": eos,
                    "eos_text": tokenizer.eos_token,
                    "had_template": had_template,
                    "rows": rows,
                }
            )
        )

    @on(m.TemplateRendered)
    def _rendered(self, message: m.TemplateRendered) -> None:
        self.preview = message.preview
        self.index = 0
        self.show()

    def action_example(self, delta: int) -> None:
        if self.preview and self.preview["previews"]:
            self.index = (self.index + delta) % len(self.preview["previews"])
            self.show()

    def show(self) -> None:
        p = self.preview
        if not p or not p["previews"]:
            return
        pv = p["previews"][self.index]
        warnings = template_warnings(p, pv)
        info = Text()
        info.append(f"Example {self.index + 1}/{len(p['previews'])}", style="bold")
        info.append(f"  {len(pv.input_ids)} tokens, {pv.trained_count} trained  ")
        info.append("trained", style=TRAINED)
        info.append(" ")
        info.append("masked (-100)", style=MASKED)
        info.append(" ")
        info.append("<special>", style=SPECIAL)
        info.append(f"\nLoss: {p['plan'].mode.replace('_', ' ')}", style="bold")
        rows = p.get("rows") or []
        if self.index < len(rows) and p["plan"].per_turn:
            info.append(f"  ({turn_summary(rows[self.index], p['plan'].mode)})")
        elif self.index < len(rows) and "segments" in rows[self.index]:
            info.append(f"  ({segment_summary(rows[self.index], p['plan'].mode)})")
        for note in p["plan"].notes:
            info.append(f"\n - {note}")
        for w in warnings:
            info.append(f"\n ! {w}", style="bold yellow")
        self.query_one("#template-info", Static).update(info)
        self.query_one("#rendered", Static).update(render_tokens(pv, p["special"]))

    def collect(self) -> bool:
        if self.preview and self.preview["previews"]:
            pv = self.preview["previews"][self.index]
            self.tapp.answers(self.STEP).update(
                {
                    "loss_mode": self.preview["plan"].mode,
                    "warnings": template_warnings(self.preview, pv),
                }
            )
        return True


def turn_summary(row: dict[str, Any], mode: str) -> str:
    """ "trained: 2 assistant (1 tool call); masked: 1 system, 2 user, 1 tool" for a row."""
    from collections import Counter

    from tuitune.core.data.training_view import conversation_turns, is_trained_turn

    msgs = conversation_turns(row)
    if msgs is None:  # plain prompt/completion wrapped as one exchange
        msgs = [{"role": "user", "weight": 0}, {"role": "assistant"}]
    everything = mode == "all_tokens"
    trained = Counter(m["role"] for m in msgs if everything or is_trained_turn(m))
    masked = Counter(m["role"] for m in msgs if not (everything or is_trained_turn(m)))
    calls = sum(1 for m in msgs if m.get("tool_calls") and (everything or is_trained_turn(m)))

    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{n} {role}" for role, n in c.items()) or "none"

    text = f"trained turns: {fmt(trained)}"
    if calls:
        text += f" ({calls} tool call{'s' if calls > 1 else ''})"
    return text + f"; masked: {fmt(masked)}"


def segment_summary(row: dict[str, Any], mode: str) -> str:
    """ "trained segments: 3; masked: 1" for an Axolotl input_output row."""
    segs = row["segments"]
    trained = sum(1 for s in segs if s["label"] or mode != "labelled_segments")
    return f"trained segments: {trained}; masked: {len(segs) - trained}"


def template_warnings(p: dict[str, Any], pv: Any) -> list[str]:
    """No template, every label masked, EOS missing from what is trained."""
    out = []
    if not p["had_template"] and p["plan"].fallback_template:
        out.append("the model has no chat template: ChatML is used (and saved with the adapter)")
    if pv.trained_count == 0:
        out.append("every label is masked (-100): this example teaches nothing")
    eos = p["eos"]
    if eos is not None and not any(
        i == eos and t for i, t in zip(pv.input_ids, pv.trained, strict=True)
    ):
        out.append(
            f"EOS {p['eos_text']!r} is not among the trained tokens: the model may not learn to stop"
        )
    if pv.truncated:
        out.append("this example is longer than max_length and is cut")
    return out


def render_tokens(pv: Any, special: set[int]) -> Text:
    t = Text()
    for tid, tok, trained in zip(pv.input_ids, pv.tokens, pv.trained, strict=True):
        if tid in special:
            t.append(tok, style=SPECIAL + (" underline" if trained else " dim"))
            continue
        style = TRAINED if trained else MASKED
        parts = tok.split("\n")
        for j, part in enumerate(parts):
            if j:
                t.append("\\n", style=style)
                t.append("\n")
            if part:
                t.append(part, style=style)
    return t
