"""The wizard's App: steps, the session, and the long work that outlives any screen.

Training is started and tailed here, not on the Train screen: a worker dies with the screen
that started it, and leaving the Train screen must not lose the run. The training child is
the runner's process in its own process session, so even closing the app leaves it going;
the App only tails ``RUN/events.jsonl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tuitune.core.runs.events import FINAL_TYPES, RunCurves
from tuitune.core.runs.rundir import RunDir
from tuitune.core.session import Session
from tuitune.tui import messages as m
from tuitune.tui.steps import STEPS, TITLES

LOG_TAIL_LINES = 200


@dataclasses.dataclass
class RunView:
    """What the App knows about the attached run, folded from its events."""

    run: RunDir
    curves: RunCurves = dataclasses.field(default_factory=RunCurves)
    log: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    events: int = 0
    attached: bool = False

    @property
    def final(self) -> dict[str, Any] | None:
        return self.curves.final

    @property
    def finished(self) -> bool:
        return bool(self.final and self.final.get("type") == "finished")

    @property
    def evaluable(self) -> bool:
        """Ended with something to score: its adapter, or a stopped run's last checkpoint."""
        return bool(self.final and self.final.get("type") in ("finished", "stopped"))


class TuituneApp(App[int]):
    """From 'should I fine-tune?' to an evaluated model, one screen per step."""

    CSS_PATH = "tuitune.tcss"
    TITLE = "tuitune"
    # The palette (ctrl+p) lists every action of the screen, see get_system_commands.
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("f1", "help", "Help", id="help"),
        Binding("question_mark", "help", "Help", id="help-key", show=False),
        Binding(
            "ctrl+p", "command_palette", "Command palette", id="palette", show=False, priority=True
        ),
    ]

    def __init__(
        self,
        session: Session | None = None,
        *,
        start_step: str = "start",
        attach: RunDir | None = None,
        probe_kwargs: dict[str, Any] | None = None,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.animation_level = "none"
        self._user_keymap = keymap or {}
        self.finish_lines: list[str] = []  # printed by `tuitune` after the app closes
        self.pending_step = ""  # a --step that waits for the Data step's preview
        from tuitune.tui.defaults import new_session

        self.session: Session = session or new_session()
        self.start_step = "train" if attach and start_step == "start" else start_step
        self.probe_kwargs = probe_kwargs or {}  # tests inject a fake NVML here
        self.run_view: RunView | None = None
        self.launch_status = ""
        self.launch_refused = False  # the last start was refused by the fit gate
        self.eval_status = ""
        self.eval_results: m.EvaluationFinished | None = None
        self.cache: dict[str, Any] = {}  # results that screens share (probe, data preview)
        self._attach_on_mount = attach
        self.opened_at = time.time()

    # -- navigation -----------------------------------------------------------------------
    def on_mount(self) -> None:
        if self._user_keymap:
            self.set_keymap(self._user_keymap)
        if self._attach_on_mount is not None:
            self.attach_run(self._attach_on_mount)
        if self.start_step == "template" and "data" not in self.cache:
            # The Template step renders the Data step's preview: read the data first.
            self.pending_step = "template"
            self.goto("data")
            self.notify("reading the data first; the Template step follows")
            return
        self.goto(self.start_step)

    # -- help and the command palette -----------------------------------------------------
    def action_help(self) -> None:
        """F1 / ?: the step's advice, the focused field's help, and the keys that work here."""
        from tuitune.tui.help import HelpScreen

        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        step = getattr(screen, "STEP", "") or getattr(screen, "HELP_TOPIC", "")
        self.push_screen(HelpScreen(step, screen.focused, self.key_list(screen)))

    def key_list(self, screen: Screen) -> list[tuple[str, str]]:
        """(keys as shown, what they do) for every binding active on ``screen``."""
        seen: dict[str, list[str]] = {}
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.id and b.action not in ("focus_next", "focus_previous", "command_palette"):
                continue  # widget internals (copy, press button): not this screen's actions
            what = b.description or b.action.replace("_", " ")
            seen.setdefault(what, []).append(self.get_key_display(b) or key)
        return [(", ".join(dict.fromkeys(keys)), what) for what, keys in seen.items()]

    def action_name_session(self) -> None:
        """The user's own name for the session, kept from then on (core.models.session_names)."""
        from tuitune.core.models.session_names import is_user_named, set_user_name
        from tuitune.tui.widgets.name_prompt import NamePrompt

        def done(name: str | None) -> None:
            if name is None:
                return
            set_user_name(self.session, name)
            self.save_session()
            self.notify(f"session name: {self.session.name}")

        current = self.session.name if is_user_named(self.session) else ""
        self.push_screen(
            NamePrompt("Name this session (Enter keeps it, Esc cancels):", current), done
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: this screen's actions (with their keys), the steps, then Textual's."""
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.id or not b.description or b.description in seen or not active.enabled:
                continue
            seen.add(b.description)
            node = active.node

            def run(node: Any = node, action: str = b.action) -> None:
                self.call_later(node.run_action, action)

            yield SystemCommand(b.description, f"{self.get_key_display(b) or key}", run)
        yield SystemCommand(
            "Name this session",
            f"now {self.session.name or 'unnamed'}; empty = named after its content again",
            self.action_name_session,
        )
        for step in STEPS:
            yield SystemCommand(
                f"Go to {TITLES[step]}",
                f"step {STEPS.index(step) + 1} of {len(STEPS)}",
                lambda step=step: self.jump(step),
            )
        yield from super().get_system_commands(screen)

    def screen_for(self, step: str) -> Screen:
        from tuitune.tui.screens import screen_class

        if not self.is_screen_installed(step):
            self.install_screen(screen_class(step)(), name=step)
        return self.get_screen(step)

    def goto(self, step: str) -> None:
        """Show a step; screens are installed once so their state survives going back."""
        screen = self.screen_for(step)
        if len(self.screen_stack) <= 1:
            self.push_screen(screen)
        else:
            self.switch_screen(screen)

    def jump(self, step: str) -> None:
        """Go to any step (the palette): what the current step holds is kept, as on Back."""
        collect = getattr(self.screen, "collect_quietly", None)
        if collect is not None:
            collect()
        self.save_session()
        self.goto(step)

    def reset_screens(self) -> None:
        """Forget every step screen but the current one (a different session was opened)."""
        for step in STEPS:
            if self.is_screen_installed(step) and self.get_screen(step) is not self.screen:
                self.uninstall_screen(step)

    def next_step(self, current: str) -> None:
        self.save_session()
        i = STEPS.index(current)
        if i + 1 < len(STEPS):
            self.goto(STEPS[i + 1])

    def prev_step(self, current: str) -> None:
        i = STEPS.index(current)
        if i > 0:
            self.goto(STEPS[i - 1])

    def save_session(self) -> None:
        """The session is saved after every step (atomically, see core.session), named
        after what it holds unless the user named it (core.models.session_names)."""
        from tuitune.core.models.session_names import refresh_name

        refresh_name(self.session)
        try:
            self.session.save()
        except OSError as e:
            self.notify(f"could not save the session: {e}", severity="error")

    def answers(self, step: str) -> dict[str, Any]:
        return self.session.answers.setdefault(step, {})

    def spec_dict(self) -> dict[str, Any]:
        """The spec being built: the session's own values over the plan's (recommendation,
        recipe, method defaults) over TrainSpec defaults; the launch re-plans the same way."""
        from tuitune.core.spec import TrainSpec

        rec = self.cache.get("recommended_spec") or {}
        return {**TrainSpec().to_dict(), **rec, **self.session.spec}

    def refresh_recommendation(self) -> None:
        """The model changed: redo the recommendation for it (Configure reads the cache)."""
        self.cache.pop("recommended_spec", None)
        self._recommend()

    @work(thread=True, group="recommend", exclusive=True, exit_on_error=False)
    def _recommend(self) -> None:
        """The plan for the session on this machine; Configure pre-fills from its choices
        that are not the user's (method defaults, recommendation, recipe)."""
        try:
            from tuitune.core.hardware.probe import probe
            from tuitune.core.training.plan import make_plan

            plan = make_plan(self.session, hardware=probe(**self.probe_kwargs))
        except Exception:  # noqa: BLE001 - advice only: Configure falls back to defaults
            return
        planned = {c.field: c.value for c in plan.choices if c.source != "user"}
        self.call_from_thread(self.cache.__setitem__, "plan", plan)
        self.call_from_thread(self.cache.__setitem__, "recommended_spec", planned)

    # -- the measured data revisits the Decide verdict ------------------------------------
    def measured_examples(self) -> int | None:
        """Examples the Data step kept after curation (its preview in the cache, or the
        count it stored in the session), None before the data was read."""
        data = self.cache.get("data")
        prepared = getattr(data, "prepared", None)
        if prepared is not None:
            return int(prepared.train_rows) + int(prepared.eval_rows)
        saved = self.session.answers.get("data") or {}
        if "train_rows" in saved:
            return int(saved["train_rows"]) + int(saved.get("eval_rows") or 0)
        return None

    @on(m.DataPrepared)
    def _data_measured(self, message: m.DataPrepared) -> None:
        """The Data screen's preview bubbles up here: its count sets the count flags."""
        prepared = message.prepared
        saved = self.session.answers.get("decide")
        if prepared is None:
            return
        from tuitune.core.decide.decision import revisit

        if isinstance(saved, dict) and saved:
            n = int(prepared.train_rows) + int(prepared.eval_rows)
            rec, change = revisit(saved, n)
            self.session.answers["decide"] = rec
            if change:
                self.notify(f"{change}; Decide (Esc back) says why", severity="warning", timeout=12)
        if self.pending_step and getattr(self.screen, "STEP", "") == "data":
            step, self.pending_step = self.pending_step, ""
            if self.screen.collect():
                self.goto(step)

    # -- failures from any worker ---------------------------------------------------------
    @on(m.WorkFailed)
    def _work_failed(self, message: m.WorkFailed) -> None:
        self.notify(f"{message.what}: {message.error}", severity="error", timeout=10)

    def fail(self, what: str, exc: BaseException) -> None:
        """Post a one-line failure from a worker (a TuituneError already is one line)."""
        text = str(exc) or type(exc).__name__
        self.post_message(m.WorkFailed(what, text.splitlines()[0][:300]))

    # -- training: launch, attach, tail ---------------------------------------------------
    @property
    def training(self) -> bool:
        return self.run_view is not None and self.run_view.final is None

    def start_training(self, force: bool = False) -> None:
        """Plan and launch. A plan that does not fit is refused with its advice; starting
        again right after the refusal (or ``force``) is the explicit override."""
        if self.training:
            self.notify("a run is already going: stop it or detach first", severity="warning")
            return
        force = force or self.launch_refused
        self.launch_refused = False
        self.run_view = None
        self.eval_results = None
        self.eval_status = ""  # an evaluation of an earlier run goes on, but is not this run's
        self.launch_status = "starting..."
        self._launch(force)

    @work(thread=True, group="launch", exclusive=True, exit_on_error=False)
    def _launch(self, force: bool = False) -> None:
        """Plan the session on this machine and launch it through ``core.training.plan.launch_plan``,
        the same path as ``tuitune replay`` (fit gate, data preparation, processes)."""
        session = self.session
        try:
            from tuitune.core.hardware.probe import probe
            from tuitune.core.runs.rundir import new_run_dir
            from tuitune.core.training.plan import fit_refusal, launch_plan, make_plan

            self.post_message(m.LaunchProgress("planning..."))
            plan = make_plan(session, hardware=probe(**self.probe_kwargs))
            self.cache["plan"] = plan
            refusal = fit_refusal(plan)
            if refusal and not force:
                self.call_from_thread(setattr, self, "launch_refused", True)
                self.post_message(m.LaunchProgress(""))
                advice = "; ".join(plan.advice[1:4])
                self.post_message(
                    m.WorkFailed(
                        "not launched",
                        f"{refusal}. Try: {advice}. Press s again to launch anyway",
                    )
                )
                return
            run = new_run_dir()

            def say(text: str) -> None:
                self.post_message(m.LaunchProgress(text))

            launch_plan(plan, session, run, progress=say, force=force)
        except Exception as e:  # noqa: BLE001 - shown to the user as one line
            self.post_message(m.LaunchProgress(""))
            self.fail("training did not start", e)
            return
        self.post_message(m.RunLaunched(run))

    def attach_run(self, run: RunDir) -> None:
        """Follow a run that is (or was) going: replays its whole curve, then tails it.

        A run of another session brings its own session along (``core.runs.session_of``:
        RUN/session.json, the saved session that lists it, or its spec), never a default."""
        if str(run.root) not in self.session.runs:
            from tuitune.core.errors import TuituneError
            from tuitune.core.runs.session_of import run_session

            try:
                self.session = run_session(run)
            except TuituneError as e:
                self.notify(f"the run's session could not be restored: {e}", severity="warning")
            else:
                self.reset_screens()
                self.cache.pop("recommended_spec", None)
                self.cache.pop("plan", None)
        self.run_view = RunView(run, attached=True)
        self.eval_results = None
        self._tail(run)

    @on(m.RunLaunched)
    def _run_launched(self, message: m.RunLaunched) -> None:
        self.launch_status = ""
        self.run_view = RunView(message.run, attached=message.attached)
        if str(message.run.root) not in self.session.runs:
            self.session.runs.append(str(message.run.root))
            self.save_session()
        self._tail(message.run)

    @on(m.LaunchProgress)
    def _launch_progress(self, message: m.LaunchProgress) -> None:
        self.launch_status = message.text

    @work(group="tail", exclusive=True, exit_on_error=False)
    async def _tail(self, run: RunDir, interval: float = 0.25) -> None:
        """Follow the run through core.runs.follow (the watcher of attach --plain and the replay)
        until its latest launch ends or its child is found gone (recorded as killed);
        train.log's tail follows along."""
        from tuitune.core.runs.follow import RunFollower

        follower = RunFollower(run, check_every=2.0)
        log_size = -1
        while True:
            events = follower.poll()
            if events:
                self.post_message(m.EventsLogged(run, events))
            if follower.final is not None:
                break
            try:
                size = run.log.stat().st_size
            except OSError:
                size = -1
            if size != log_size:
                log_size = size
                self.post_message(m.LogTailed(run, _tail_lines(run.log, 40)))
            await asyncio.sleep(interval)
        self.post_message(m.LogTailed(run, _tail_lines(run.log, 40)))

    @on(m.EventsLogged)
    def _events_logged(self, message: m.EventsLogged) -> None:
        view = self.run_view
        if view is None or view.run != message.run:
            return
        for e in message.events:
            view.curves.add(e)
            view.events += 1
            if e.get("type") == "log" and e.get("message"):
                view.log.append(str(e["message"]))
            if e.get("type") in FINAL_TYPES:
                self.post_message(m.RunEnded(view.run, e))

    @on(m.LogTailed)
    def _log_tailed(self, message: m.LogTailed) -> None:
        if self.run_view is not None and self.run_view.run == message.run:
            self.run_view.log.clear()
            self.run_view.log.extend(message.lines)

    @on(m.RunEnded)
    def _run_ended(self, message: m.RunEnded) -> None:
        if float(message.final.get("time") or time.time()) < self.opened_at:
            return  # an attached run that had ended before: no news
        kind = message.final.get("type")
        text = message.final.get("message") or message.final.get("reason") or ""
        severity = "information" if kind == "finished" else "warning"
        self.notify(f"training {kind} {text}".strip(), severity=severity, timeout=8)

    def stop_training(self) -> None:
        """Ask the runner to checkpoint and end; waiting for it happens off the UI thread."""
        if not self.training or self.run_view is None:
            return
        self.notify("stop requested: saving a checkpoint, then ending")
        self._stop(self.run_view.run)

    @work(thread=True, group="stop", exclusive=True, exit_on_error=False)
    def _stop(self, run: RunDir) -> None:
        try:
            from tuitune.core.runs.process import stop_run

            stop_run(run, by="the wizard")
        except Exception as e:  # noqa: BLE001
            self.fail("could not stop the run", e)

    # -- evaluation and export ------------------------------------------------------------
    def start_evaluation(self) -> None:
        if self.run_view is None or not self.run_view.evaluable:
            self.notify("evaluation needs a finished or stopped run", severity="warning")
            return
        self.eval_status = "starting evaluation..."
        self.eval_results = None
        self._evaluate(self.run_view.run)

    @work(thread=True, group="evaluation", exclusive=True, exit_on_error=False)
    def _evaluate(self, run: RunDir) -> None:
        try:
            from tuitune.core.training.evaluate_run import evaluate_run

            def progress(e: dict[str, Any]) -> None:
                if e.get("type") == "progress":
                    text = f"{e.get('phase', 'evaluating')}: {e.get('done')}/{e.get('total')}"
                else:
                    text = str(e.get("message") or e.get("type"))
                view = self.run_view
                if view is not None and view.run == run:  # not a newer run's status line
                    self.post_message(m.EvaluationProgressed(text))

            # the replay's evaluation (base vs tuned, every method); a stopped run: its last
            # checkpoint (core.training.evaluate_run, as `tuitune evaluate RUN`)
            done = evaluate_run(run, self.session, on_event=progress)
            results, report, rows = done.results, done.report, done.rows
        except Exception as e:  # noqa: BLE001
            self.post_message(m.EvaluationProgressed(""))
            self.fail("evaluation failed", e)
            return
        self.post_message(m.EvaluationFinished(results, rows, report, run))

    @on(m.EvaluationProgressed)
    def _eval_progress(self, message: m.EvaluationProgressed) -> None:
        self.eval_status = message.text

    @on(m.EvaluationFinished)
    def _eval_finished(self, message: m.EvaluationFinished) -> None:
        self.answers("evaluate")["report"] = str(message.report)
        self.save_session()
        view = self.run_view
        if message.run is not None and (view is None or view.run != message.run):
            # a run started since: its Evaluate screen must not show this one's results
            self.notify(f"evaluation of {message.run.id} written: {message.report}", timeout=10)
            return
        self.eval_status = ""
        self.eval_results = message

    def start_export(self, what: str) -> None:
        """Export the finished run: "adapter", "merged", "configs" (TRL, Axolotl, LLaMA-Factory),
        or one of core.ship.quantized's formats ("4bit", "8bit", "gguf", "card")."""
        if self.run_view is None or not self.run_view.finished:
            self.notify("export needs a finished run", severity="warning")
            return
        self.notify(f"exporting {what}...")
        self._export(self.run_view.run, what)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, run: RunDir, what: str) -> None:
        try:
            from tuitune.core.ship.export import export_run
            from tuitune.core.ship.quantized import SHIP_FORMATS, ship_run

            if what in SHIP_FORMATS:  # 4bit, 8bit, gguf, card: checked against the run
                # the wizard writes into the run's own exports folder: refreshing is fine
                paths = [ship_run(run, what, force=True).line()]
            else:
                formats = ("trl", "axolotl", "llamafactory") if what == "configs" else (what,)
                paths = [export_run(run, fmt, force=True) for fmt in formats]
        except Exception as e:  # noqa: BLE001
            self.fail(f"export {what}", e)
            return
        self.post_message(m.ExportFinished(what, ", ".join(map(str, paths))))

    @on(m.ExportFinished)
    def _export_finished(self, message: m.ExportFinished) -> None:
        self.answers("evaluate").setdefault("exports", {})[message.what] = message.path
        self.save_session()
        self.notify(f"exported {message.what}: {message.path}", timeout=10)


def _tail_lines(path: Path, n: int, max_bytes: int = 16384) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # tqdm-style carriage returns: keep the last state of each line
    lines = [ln.rsplit("\r", 1)[-1] for ln in data.splitlines()]
    return [ln for ln in lines if ln.strip()][-n:]
