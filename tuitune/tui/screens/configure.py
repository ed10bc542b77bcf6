"""Step 7: method and hyperparameters, pre-filled from the recommendation.

Each field shows its one-line help from ``TrainSpec.help``; values are parsed and checked as
they are typed (a bad value is refused inline and blocks Next); the memory estimate follows
the fields (computed by ``core.estimate`` in a worker).
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.validation import Function, Integer, Number, ValidationResult, Validator
from textual.widgets import Checkbox, Input, Label, Select, Static

from tuitune.core.spec import METHODS, TrainSpec
from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen
from tuitune.tui.widgets.yes_box import YesBox

SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts")
PEFT_ONLY = {"lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_dora"}
# (field, validator); order is the order shown
FIELDS: tuple[tuple[str, Validator | None], ...] = (
    ("method", None),
    ("learning_rate", Number(minimum=1e-9, maximum=1.0)),
    ("num_train_epochs", Number(minimum=0.01, maximum=100)),
    (
        "max_steps",
        Function(
            lambda v: _int(v) is not None and (_int(v) == -1 or _int(v) > 0),
            "-1 or a positive number",
        ),
    ),
    ("per_device_train_batch_size", Integer(minimum=1, maximum=4096)),
    ("gradient_accumulation_steps", Integer(minimum=1, maximum=4096)),
    ("lr_scheduler_type", None),
    ("warmup_ratio", Number(minimum=0.0, maximum=0.5)),
    ("weight_decay", Number(minimum=0.0, maximum=1.0)),
    ("max_length", Integer(minimum=16, maximum=1_000_000)),
    ("lora_r", Integer(minimum=1, maximum=1024)),
    ("lora_alpha", Integer(minimum=1, maximum=4096)),
    ("lora_dropout", Number(minimum=0.0, maximum=0.9)),
    ("lora_target_modules", Function(lambda v: bool(_names(v)), "at least one module name")),
    ("gradient_checkpointing", None),
    ("completion_only_loss", None),
    ("seed", Integer(minimum=0)),
)


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


def _names(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


_HINTS = typing.get_type_hints(TrainSpec)


def parse(name: str, raw: str) -> Any:
    """The typed value of a field as typed; ValueError when it does not parse."""
    tp = _HINTS[name]
    if tp is float:
        return float(raw)
    if tp is int:
        return int(raw)
    if typing.get_origin(tp) is list:
        return _names(raw)
    return raw


def show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


class ConfigureScreen(StepScreen):
    STEP = "configure"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+d", "defaults", "Recommended values", id="defaults"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.invalid: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        spec = self.initial()
        yield Static("Estimating memory...", id="estimate")
        yield Static(id="field-help")
        with VerticalScroll(id="fields"):
            for name, validator in FIELDS:
                with Horizontal(classes="config-row", id=f"row-{name}"):
                    yield Label(name, classes="config-label")
                    value = spec[name]
                    if name == "method":
                        yield Select(
                            [(x, x) for x in METHODS],
                            value=value,
                            allow_blank=False,
                            id=f"f-{name}",
                            compact=True,
                        )
                    elif name == "lr_scheduler_type":
                        opts = SCHEDULERS if value in SCHEDULERS else (value, *SCHEDULERS)
                        yield Select(
                            [(x, x) for x in opts],
                            value=value,
                            allow_blank=False,
                            id=f"f-{name}",
                            compact=True,
                        )
                    elif isinstance(value, bool):
                        yield YesBox("", value, id=f"f-{name}", compact=True)
                    else:
                        yield Input(
                            show(value),
                            id=f"f-{name}",
                            validators=validator,
                            compact=True,
                            validate_on=["changed", "submitted"],
                        )
                    yield Static(TrainSpec.help(name), classes="config-help", id=f"h-{name}")

    def initial(self) -> dict[str, Any]:
        """Session spec over the recommendation over TrainSpec's seed defaults."""
        app = self.tapp
        rec = app.cache.get("recommended_spec") or {}
        return {**TrainSpec().to_dict(), **rec, **app.session.spec}

    def on_mount(self) -> None:
        super().on_mount()
        self._peft_rows()
        self.update_estimate()

    def on_screen_resume(self) -> None:
        self.update_estimate()

    def on_descendant_focus(self, event: Any) -> None:
        wid = getattr(event.widget, "id", "") or ""
        if wid.startswith("f-"):
            name = wid[2:]
            text = self.invalid.get(name) or f"{name}: {TrainSpec.help(name)}"
            self.query_one("#field-help", Static).update(text)

    def values(self) -> dict[str, Any]:
        """Every field that parses; bad ones are listed in ``self.invalid``."""
        out: dict[str, Any] = {}
        self.invalid = {}
        for name, validator in FIELDS:
            w = self.query_one(f"#f-{name}")
            if isinstance(w, (Select, Checkbox)):
                out[name] = w.value
            else:
                raw = w.value.strip()
                result: ValidationResult | None = validator.validate(raw) if validator else None
                try:
                    value = parse(name, raw)
                except ValueError:
                    self.invalid[name] = f"{name}: {raw!r} is not a {_HINTS[name].__name__}"
                    continue
                if result is not None and not result.is_valid:
                    self.invalid[name] = f"{name}: {'; '.join(result.failure_descriptions)}"
                    continue
                out[name] = value
        return out

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event: Any) -> None:
        self._peft_rows()
        self.update_estimate()

    def _peft_rows(self) -> None:
        method = self.query_one("#f-method", Select).value
        for name in PEFT_ONLY & {n for n, _ in FIELDS}:
            self.query_one(f"#row-{name}").display = method != "full"

    def update_estimate(self) -> None:
        values = self.values()
        for name, _ in FIELDS:
            row = self.query_one(f"#row-{name}")
            row.set_class(name in self.invalid, "-invalid")
            help_text = self.invalid.get(name) or TrainSpec.help(name)
            self.query_one(f"#h-{name}", Static).update(help_text)
        if self.invalid:
            self.set_status(Text(f"{len(self.invalid)} invalid field(s)", style="bold red"))
        else:
            self.set_status("")
        self._estimate({**self.initial(), **values})

    @work(thread=True, group="estimate", exclusive=True, exit_on_error=False)
    def _estimate(self, spec: dict[str, Any]) -> None:
        app = self.tapp
        try:
            from tuitune.tui.hardware_glue import estimate_for_spec

            est = estimate_for_spec(app, spec)
        except Exception as e:  # noqa: BLE001 - the estimate is advice; show why it is missing
            self.post_message(m.EstimateUpdated(spec, f"memory estimate unavailable: {e}"))
            return
        self.post_message(m.EstimateUpdated(spec, est))

    @on(m.EstimateUpdated)
    def _estimated(self, message: m.EstimateUpdated) -> None:
        est = message.estimate
        self.query_one("#estimate", Static).update(
            est if isinstance(est, (str, Text)) else str(est)
        )

    def action_defaults(self) -> None:
        """Put back the recommended values (seed defaults where there is no recommendation)."""
        rec = {**TrainSpec().to_dict(), **(self.tapp.cache.get("recommended_spec") or {})}
        for name, _ in FIELDS:
            w = self.query_one(f"#f-{name}")
            if isinstance(w, (Select, Checkbox)):
                w.value = rec[name]
            else:
                w.value = show(rec[name])
        self.notify("recommended values restored")

    def collect(self) -> bool:
        values = self.values()
        if self.invalid:
            first = next(iter(self.invalid))
            self.query_one(f"#f-{first}").focus()
            self.notify("; ".join(self.invalid.values()), severity="error")
            return False
        try:
            spec = TrainSpec.from_dict({**self.initial(), **values}, source="configure")
        except Exception as e:  # noqa: BLE001
            self.notify(str(e), severity="error")
            return False
        rec = self.tapp.cache.get("recommended_spec") or {}
        chosen = {k: getattr(spec, k) for k in values}
        self.tapp.session.spec = {**rec, **self.tapp.session.spec, **chosen}
        self.tapp.answers(self.STEP)["edited"] = True
        return True

    def collect_quietly(self) -> None:
        values = self.values()
        self.tapp.session.spec.update(values)
