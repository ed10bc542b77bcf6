"""Step 7: the plan, editable. Method and hyperparameters as ``core.training.plan`` will launch them.

The form opens on the plan: the session's own values (marked "yours") over the plan's
choices (recommendation, recipe, method defaults, data), each with its reason. Every edit
re-plans in a worker, so the memory figure, the time on a CPU and the other fields follow.
Values are parsed and checked by the spec's own rule (``core.spec.parse_value``), the same
one ``--set`` and session files go through.

Switching method loads that method's defaults (``core.method_defaults``: learning rate,
epochs, beta...) and asks before replacing values the user typed; fields the method does not
use are hidden; DPO starts from this session's SFT adapter (picked from its finished runs)
and says so when there is none. A method the data does not suit is refused before Next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select, Static

from tuitune.core.spec import METHODS, SCHEDULERS, TrainSpec, show_value
from tuitune.tui import messages as m
from tuitune.tui.screens.base import StepScreen
from tuitune.tui.widgets.yes_box import YesBox

SFT = ("full", "lora", "qlora")
PEFT = ("lora", "qlora", "dpo", "reward", "grpo")
# Field -> the methods it applies to (absent: every method). Order is the order shown.
FIELDS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("method", None),
    ("init_adapter", ("dpo", "grpo")),
    ("beta", ("dpo",)),
    ("learning_rate", None),
    ("num_train_epochs", None),
    ("max_steps", None),
    ("per_device_train_batch_size", None),
    ("gradient_accumulation_steps", None),
    ("lr_scheduler_type", None),
    ("warmup_ratio", None),
    ("weight_decay", None),
    ("max_length", None),
    ("lora_r", PEFT),
    ("lora_alpha", PEFT),
    ("lora_dropout", PEFT),
    ("lora_target_modules", PEFT),
    ("gradient_checkpointing", None),
    ("packing", SFT),
    ("completion_only_loss", SFT),
    ("num_generations", ("grpo",)),
    ("max_completion_length", ("grpo",)),
    ("reward_function", ("grpo",)),
    ("seed", None),
)
NAMES = tuple(n for n, _ in FIELDS)
NO_ADAPTER = "(none: the base model)"
REPLAN_DELAY = 0.3
SOURCE_TAG = {
    "user": "yours",
    "recommendation": "fit",
    "recipe": "recipe",
    "method default": "method",
    "data": "data",
    "configure": "run",
    "": "spec",  # TrainSpec's own default: nothing decided it
}


def applies(name: str, method: str) -> bool:
    for n, methods in FIELDS:
        if n == name:
            return methods is None or method in methods
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b or (a == "" and b is None)


def sft_adapters(session: Any) -> list[tuple[str, str]]:
    """(label, adapter folder) of this session's finished LoRA/QLoRA runs, newest first: what
    DPO can start from."""
    from tuitune.core.runs.rundir import RunDir

    out = []
    for root in reversed(session.runs):
        run = RunDir(Path(session.resolve(root)))
        try:
            from tuitune.core.runs.process import run_state

            if run_state(run) != "finished":
                continue
            spec = TrainSpec.load(run.spec)
        except Exception:  # noqa: BLE001 - a broken or foreign run is simply not offered
            continue
        if spec.method in ("lora", "qlora") and (run.adapter / "adapter_config.json").is_file():
            out.append((f"{run.id} ({spec.method})", str(run.adapter)))
    return out


class ConfigureScreen(StepScreen):
    STEP = "configure"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+d", "defaults", "Plan values", id="defaults", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.edits: dict[str, Any] = {}  # the user's values: what the session will hold
        self.invalid: dict[str, str] = {}
        self.plan: Any = None
        self.plan_error = ""
        self.local_reasons: dict[str, str] = {}  # choices made here (the SFT adapter)
        self._timer: Any = None
        self._asking = False
        self._modal = False  # a question of ours is over the screen (resume is not a step)
        self._adapter_opts: list[tuple[str, str]] = []
        self._planned_edits: dict[str, Any] | None = None  # what self.plan was made from
        self._shown: dict[str, Any] = {}  # what each widget was given (not the user's edit)
        self.fallback: dict[str, tuple[Any, str]] = {}  # the method's defaults, shown at once
        self._advance_after_plan = False

    # -- layout ---------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        self.edits = {k: v for k, v in self.tapp.session.spec.items() if k != "schema_version"}
        start = {**TrainSpec().to_dict(), **self.edits}
        cached = self.tapp.cache.get("plan")
        if cached is not None:
            start = {**cached.spec.to_dict(), **self.edits}
        adapters = sft_adapters(self.tapp.session)
        yield Static("Planning...", id="estimate")
        yield Static(id="config-errors")
        with VerticalScroll(id="fields"):
            for name in NAMES:
                with Horizontal(classes="config-row", id=f"row-{name}"):
                    yield Label(name, classes="config-label")
                    yield self._widget(name, start.get(name), adapters)
                    yield Static("", classes="config-source", id=f"s-{name}")
                    yield Static(TrainSpec.help(name), classes="config-help", id=f"h-{name}")
        yield Static(id="field-help")

    def _widget(self, name: str, value: Any, adapters: list[tuple[str, str]]) -> Any:
        self._shown[name] = value
        if name == "method":
            return Select(
                [(x, x) for x in METHODS],
                value=value,
                allow_blank=False,
                id=f"f-{name}",
                compact=True,
            )
        if name == "lr_scheduler_type":
            opts = SCHEDULERS if value in SCHEDULERS else (value, *SCHEDULERS)
            return Select(
                [(x, x) for x in opts], value=value, allow_blank=False, id=f"f-{name}", compact=True
            )
        if name == "init_adapter":
            opts = [(NO_ADAPTER, "")] + [(label, path) for label, path in adapters]
            if value and value not in [p for _l, p in opts]:
                opts.append((Path(value).parent.name or value, value))
            self._adapter_opts = opts
            return Select(opts, value=value or "", allow_blank=False, id=f"f-{name}", compact=True)
        if isinstance(value, bool):
            return YesBox("", value, id=f"f-{name}", compact=True)
        return Input(show_value(value), id=f"f-{name}", compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self._rows()
        self.replan(now=True)

    def on_screen_resume(self) -> None:
        if self._modal:
            self._modal = False  # back from our own question: nothing else changed
            return
        # Back from another step: the Data step sets data_format, the Model step the method.
        spec = self.tapp.session.spec
        if "data_format" in spec:
            self.edits["data_format"] = spec["data_format"]
        method = spec.get("method")
        if method in METHODS and method != self.method():
            self.query_one("#f-method", Select).value = method  # a switch, with its defaults
        self.replan(now=True)

    def ask(self, question: str, done: Any) -> None:
        from tuitune.tui.widgets.confirm import Confirm

        self._modal = True
        self.app.push_screen(Confirm(question), done)

    def method(self) -> str:
        return str(self.query_one("#f-method", Select).value)

    def _rows(self) -> None:
        method = self.method()
        for name in NAMES:
            self.query_one(f"#row-{name}").display = applies(name, method)

    # -- reading the form -----------------------------------------------------------------
    def read(self, name: str) -> Any:
        """The typed value of one field; raises TuituneError with the rule when it is bad."""
        from tuitune.core.spec import parse_value

        w = self.query_one(f"#f-{name}")
        if isinstance(w, (Select, Checkbox)):
            return w.value
        return parse_value(name, w.value)

    def set_widget(self, name: str, value: Any) -> None:
        """Show ``value`` without it counting as the user's edit."""
        self._shown[name] = value
        w = self.query_one(f"#f-{name}")
        if isinstance(w, Select):
            with w.prevent(Select.Changed):
                known = [v for _l, v in self._adapter_opts]
                if name == "init_adapter" and value and value not in known:
                    self._adapter_opts.append((Path(value).parent.name, value))
                    w.set_options(self._adapter_opts)
                w.value = value if value is not None else ""
        elif isinstance(w, Checkbox):
            with w.prevent(Checkbox.Changed):
                w.value = bool(value)
        elif w.value != show_value(value) and not w.has_focus:
            with w.prevent(Input.Changed):
                w.value = show_value(value)

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _changed(self, event: Any) -> None:
        wid = getattr(event.control, "id", "") or ""
        if not wid.startswith("f-"):
            return
        name = wid[2:]
        from tuitune.core.errors import TuituneError

        try:
            value = self.read(name)
        except TuituneError as e:
            self.invalid[name] = e.message + (f" (fix: {e.fix})" if e.fix else "")
            self.show_problems()
            return
        if self.invalid.pop(name, None) is not None:
            self.query_one(f"#h-{name}", Static).update(self.reason(name))
            self.show_problems()
        if name not in self.edits and _same(value, self._shown.get(name)):
            return  # the value this screen put there (mount, a re-plan): not the user's edit
        if name == "method":
            self.switch_method(value)
            return
        self.edits[name] = value
        self.local_reasons.pop(name, None)
        self.replan()

    # -- method switches ------------------------------------------------------------------
    def switch_method(self, method: str) -> None:
        """Load the method's defaults; ask before they replace values the user typed."""
        from tuitune.core.method_defaults import defaults_for

        old = self.edits.get("method", self.plan.spec.method if self.plan else "lora")
        if method == old:
            return
        defaults = defaults_for(method)
        clash = {
            k: (self.edits[k], v)
            for k, (v, _why) in defaults.items()
            if k in self.edits and self.edits[k] != v and applies(k, method)
        }
        self.edits["method"] = method
        self.fallback = {k: (v, why) for k, (v, why) in defaults.items() if k in NAMES}
        self._show_fallback()
        self._rows()
        self._adapter_for(method)
        if not clash:
            self.replan(now=True)
            return
        lines = "\n".join(
            f"  {k}: yours {show_value(a)} -> {method}'s {show_value(b)}"
            for k, (a, b) in clash.items()
        )
        question = (
            f"Switch to {method}: replace your values with {method}'s defaults?\n{lines}\n"
            f"(y replaces them; n keeps yours)"
        )

        def done(replace: bool | None) -> None:
            self._asking = False
            if replace:
                for k in clash:
                    self.edits.pop(k, None)
                    self.invalid.pop(k, None)
                self._show_fallback()
                self.notify(f"{method}'s defaults loaded: " + ", ".join(clash))
            self.replan(now=True)

        self._asking = True
        self.ask(question, done)

    def _show_fallback(self) -> None:
        """The method's defaults at once, before (or without) a plan: the plan refuses a
        method the data does not suit, and the fields must still show that method's values."""
        for name, (value, why) in self.fallback.items():
            if name not in self.edits and name not in self.invalid:
                self.set_widget(name, value)
                self.query_one(f"#s-{name}", Static).update(Text("method", style="dim"))
                self.query_one(f"#h-{name}", Static).update(why)

    def _adapter_for(self, method: str) -> None:
        """DPO starts from this session's newest SFT adapter, unless one was chosen."""
        if method not in ("dpo", "grpo") or self.edits.get("init_adapter"):
            return
        adapters = sft_adapters(self.tapp.session)
        if adapters:
            label, path = adapters[0]
            self.edits["init_adapter"] = path
            self.local_reasons["init_adapter"] = (
                f"this session's newest finished SFT run ({label}): the seeds' pipeline is "
                "SFT, then DPO on top of it"
            )
            self.set_widget("init_adapter", path)

    def action_defaults(self) -> None:
        """Back to the plan's values: asks first, and keeps the method and the data format."""
        keep = ("method", "data_format")
        mine = [k for k in self.edits if k not in keep and k in NAMES]
        if not mine:
            self.notify("nothing to replace: every value is the plan's")
            return
        shown = ", ".join(f"{k}={show_value(self.edits[k])}" for k in mine[:8])
        more = f" and {len(mine) - 8} more" if len(mine) > 8 else ""
        question = (
            f"Replace your {len(mine)} value(s) with the plan's?\n  {shown}{more}\n"
            f"The method stays {self.method()}. (y replaces them; n keeps yours)"
        )

        def done(replace: bool | None) -> None:
            if replace:
                for k in mine:
                    self.edits.pop(k, None)
                    self.invalid.pop(k, None)
                self.local_reasons.clear()
                self._adapter_for(self.method())
                self.notify(f"plan values restored for {len(mine)} field(s)")
                self.replan(now=True)

        self.ask(question, done)

    # -- the plan, in a worker ------------------------------------------------------------
    def replan(self, now: bool = False) -> None:
        if self._timer is not None:
            self._timer.stop()
        if now:
            self._plan(dict(self.edits))
        else:
            self._timer = self.set_timer(REPLAN_DELAY, lambda: self._plan(dict(self.edits)))

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def _plan(self, edits: dict[str, Any]) -> None:
        from tuitune.core.errors import TuituneError
        from tuitune.tui import hardware_glue as glue

        app = self.tapp
        try:
            plan = glue.plan_for(app, spec=edits)
            timing = glue.plan_time(app, plan)
        except TuituneError as e:
            self.post_message(m.PlanComputed(None, None, str(e), {"edits": edits}))
            return
        except Exception as e:  # noqa: BLE001 - the plan is needed to go on: say why it failed
            self.post_message(m.PlanComputed(None, None, f"{type(e).__name__}: {e}", {}))
            return
        self.post_message(m.PlanComputed(plan, timing, "", {"edits": edits}))

    @on(m.PlanComputed)
    def _planned(self, message: m.PlanComputed) -> None:
        from tuitune.tui.hardware_glue import plan_memory_text

        estimate = self.query_one("#estimate", Static)
        self._planned_edits = message.extra.get("edits")
        advance, self._advance_after_plan = self._advance_after_plan, False
        if message.plan is None:
            self.plan_error = message.error
            estimate.update(Text("No plan for these values (see below).", style="bold red"))
            self.show_problems()
            return
        self.plan_error = ""
        plan = self.plan = message.plan
        estimate.update(plan_memory_text(plan, message.timing))
        values = plan.spec.to_dict()
        for name in NAMES:
            if name in self.invalid:
                continue
            if name not in self.edits and name != "method":
                self.set_widget(name, values[name])
            src = self.query_one(f"#s-{name}", Static)
            reason = self.reason(name)
            tag = self.source(name)
            src.update(Text(SOURCE_TAG.get(tag, tag), style="bold" if tag == "user" else "dim"))
            self.query_one(f"#h-{name}", Static).update(reason)
        self._rows()
        self.show_problems()
        self._focus_help()
        if advance and self._planned_edits == self.edits:
            self.action_next()

    def _plan_current(self) -> bool:
        return (
            self.plan is not None and not self.plan_error and self.plan.spec.method == self.method()
        )

    def source(self, name: str) -> str:
        if name in self.local_reasons:
            return "configure"
        if not self._plan_current() and name in self.fallback and name not in self.edits:
            return "method default"
        if self.plan is None:
            return "user" if name in self.edits else ""
        try:
            return self.plan.choice(name).source
        except KeyError:
            return "user" if name in self.edits else ""

    def reason(self, name: str) -> str:
        """Why this value: the plan's reason, or the field's help where the plan has none."""
        if name in self.local_reasons:
            return self.local_reasons[name]
        if not self._plan_current() and name in self.fallback and name not in self.edits:
            return self.fallback[name][1]
        if self.plan is not None:
            try:
                return self.plan.choice(name).reason
            except KeyError:
                pass
        return TrainSpec.help(name)

    # -- problems and warnings ------------------------------------------------------------
    def warnings(self) -> list[str]:
        method = self.method()
        out = []
        if method in ("dpo", "grpo") and not self.edits.get("init_adapter"):
            out.append(
                f"{method} on the base model, without an SFT adapter: the seeds say always SFT "
                "before DPO. Train an SFT run (lora) in this session first and pick its adapter "
                "in init_adapter, or go on knowingly."
            )
        if self.plan is not None and not self.plan.fits:
            out.append(f"{self.plan.verdict_words}: " + "; ".join(self.plan.advice[1:4]))
        return out

    def show_problems(self) -> None:
        for name in NAMES:
            row = self.query_one(f"#row-{name}")
            row.set_class(name in self.invalid, "-invalid")
            if name in self.invalid:
                self.query_one(f"#h-{name}", Static).update(self.invalid[name])
        t = Text()
        for problem in self.invalid.values():
            t.append(f"{problem}\n", style="bold red")
        if self.plan_error:
            t.append(self.plan_error, style="bold red")
            if "preference" in self.plan_error and self.method() in SFT:
                t.append(
                    "\nThe data and the method must agree: the data is preference pairs, so pick "
                    "method dpo (or reward), or Esc back to Data for SFT data.",
                    style="red",
                )
            elif "preference" in self.plan_error:
                t.append(
                    "\nThe data and the method must agree: Esc back to Data for preference pairs "
                    "(prompt/chosen/rejected, e.g. assets/quickstart/preference.jsonl), or pick "
                    "an SFT method.",
                    style="red",
                )
            t.append("\n")
        for w in self.warnings():
            t.append(f"! {w}\n", style="bold yellow")
        t.rstrip()
        box = self.query_one("#config-errors", Static)
        box.update(t)
        box.display = bool(t.plain)
        n = len(self.invalid) + bool(self.plan_error)
        self.set_status(Text(f"{n} problem(s): see above", style="bold red") if n else "")

    def on_descendant_focus(self, event: Any) -> None:
        self._focus_help()

    def _focus_help(self) -> None:
        focused = self.focused
        wid = getattr(focused, "id", "") or ""
        box = self.query_one("#field-help", Static)
        if not wid.startswith("f-"):
            box.update(Text("F1: help on the focused field; ^d: back to the plan's values", "dim"))
            return
        name = wid[2:]
        t = Text()
        t.append(f"{name}", style="bold")
        t.append(f" [{SOURCE_TAG.get(self.source(name), self.source(name))}] ", style="dim")
        if name in self.invalid:
            t.append(self.invalid[name], style="bold red")
        else:
            t.append(self.reason(name))
        t.append(f"  ({TrainSpec.help(name)})", style="dim italic")
        box.update(t)

    # -- going on -------------------------------------------------------------------------
    def collect(self) -> bool:
        if self.invalid:
            first = next(iter(self.invalid))
            self.query_one(f"#f-{first}").focus()
            self.show_problems()
            return False
        if self._planned_edits != self.edits or (self.plan is None and not self.plan_error):
            # Next is answered by the plan of exactly these values (method and data agree?)
            self._advance_after_plan = True
            self.set_status(Text("planning these values...", style="dim"))
            self.replan(now=True)
            return False
        if self.plan_error:
            self.show_problems()
            self.notify(self.plan_error, severity="error", timeout=8)
            return False
        self.tapp.session.spec = dict(self.edits)
        self.tapp.answers(self.STEP).update(
            {
                "edited": sorted(k for k in self.edits if k in NAMES),
                "verdict": self.plan.verdict,
                "memory": self.plan.memory_line(),
            }
        )
        return True

    def collect_quietly(self) -> None:
        self.tapp.session.spec = dict(self.edits)
