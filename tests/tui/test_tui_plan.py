"""The wizard shows one plan: the Model step refuses what cannot be used, Configure follows
the method's defaults and asks before replacing edits, and Hardware, Model and Configure
print the same memory figure for the same plan (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Select, Static  # noqa: E402
from wizard_kit import make_app, recorded_events, settle, write_run  # noqa: E402

from tuitune.core.hardware.probe import FakeGpu, FakeNVML  # noqa: E402
from tuitune.core.method_defaults import defaults_for  # noqa: E402

FAKE = {"nvml": FakeNVML([FakeGpu(name="NVIDIA L4", total_gib=24.0, used_gib=0.5, cc=(8, 9))])}


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_model_that_does_not_exist_is_refused_on_the_model_step(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="model", probe_kwargs=FAKE)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        ref = app.screen.query_one("#model-ref", Input)
        ref.value = "foo/does-not-exist"
        await pilot.pause(0.8)  # the check runs when typing stops
        await settle(pilot)
        status = _text(app, "#model-status")
        assert "Refused" in status and "foo/does-not-exist" in status and "fix:" in status
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen.STEP == "model"  # not on to Data, where it used to surface
        assert app.session.model.ref != "foo/does-not-exist"


async def test_the_default_models_catalogue_row_keeps_default(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="model", probe_kwargs=FAKE)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#catalog", DataTable)
        ids = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        table.move_cursor(row=ids.index("HuggingFaceTB/SmolLM2-135M-Instruct"))
        await pilot.press("ctrl+u")
        assert app.screen.query_one("#model-ref", Input).value == "default"


async def test_the_memory_figure_is_the_same_on_hardware_model_and_configure(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, step="hardware", probe_kwargs=FAKE)
    app.session.model.ref = "default"
    figures = {}
    async with app.run_test(size=(120, 40)) as pilot:
        for step in ("hardware", "model", "configure"):
            app.goto(step)
            await settle(pilot, rounds=5)
            box = {"hardware": "#recommendation", "model": "#model-plan"}.get(step, "#estimate")
            text = _text(app, box)
            assert "memory " in text, text
            line = text.split("memory ", 1)[1].splitlines()[0]
            figures[step] = line.split(" per device")[0]
            # the assumptions sit next to it
            assert "seq " in text and "micro-batch" in text and "checkpointing" in text
        # the catalogue's own row for the session's model is that figure too
        app.goto("model")
        await settle(pilot)
        table = app.screen.query_one("#catalog", DataTable)
        row = next(
            table.get_row_at(i)
            for i in range(table.row_count)
            if table.get_row_at(i)[3] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        )
        assert figures["hardware"].startswith(str(row[1]))
    assert figures["hardware"] == figures["model"] == figures["configure"], figures


async def test_switching_method_loads_its_defaults_and_hides_what_does_not_apply(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, step="configure", probe_kwargs=FAKE)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.query_one("#f-learning_rate", Input).value == "0.0002"
        assert not screen.query_one("#row-beta").display  # SFT has no beta
        screen.query_one("#f-method", Select).value = "full"
        await settle(pilot)
        full_lr = defaults_for("full")["learning_rate"][0]
        assert float(screen.query_one("#f-learning_rate", Input).value) == full_lr  # ~1e-5
        assert not screen.query_one("#row-lora_r").display
        screen.query_one("#f-method", Select).value = "dpo"
        await settle(pilot)
        dpo = defaults_for("dpo")
        assert float(screen.query_one("#f-learning_rate", Input).value) == dpo["learning_rate"][0]
        assert float(screen.query_one("#f-beta", Input).value) == dpo["beta"][0]
        assert (
            screen.query_one("#row-beta").display and screen.query_one("#row-init_adapter").display
        )
        assert not screen.query_one("#row-completion_only_loss").display
        # DPO on the base model, and SFT data: warned and refused before Next
        errors = _text(app, "#config-errors")
        assert "SFT before DPO" in errors and "preference" in errors
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen.STEP == "configure"


async def test_a_method_switch_asks_before_replacing_the_users_values(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="configure", probe_kwargs=FAKE)
    app.session.spec = {"learning_rate": 5e-4}  # the session's own value, replaced on request
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one("#f-learning_rate", Input).value = "0.0005"
        await settle(pilot)
        assert screen.edits["learning_rate"] == 5e-4
        screen.query_one("#f-method", Select).value = "full"
        await settle(pilot)
        question = str(app.screen.query_one("#confirm-text", Static).render())
        assert "learning_rate" in question and "0.0005" in question
        await pilot.press("n")  # keep mine
        await settle(pilot)
        assert screen.query_one("#f-learning_rate", Input).value == "0.0005"
        assert screen.edits["method"] == "full"
        screen.query_one("#f-method", Select).value = "lora"
        await settle(pilot)
        await pilot.press("y")  # now take LoRA's
        await settle(pilot)
        assert "learning_rate" not in screen.edits  # and the session's value did not come back
        assert screen.query_one("#f-learning_rate", Input).value == "0.0002"
        # Ctrl+D asks too, and keeps the method
        screen.query_one("#f-max_steps", Input).value = "7"
        await settle(pilot)
        await pilot.press("ctrl+d")
        await settle(pilot)
        assert "max_steps=7" in str(app.screen.query_one("#confirm-text", Static).render())
        await pilot.press("y")
        await settle(pilot)
        assert "max_steps" not in screen.edits and screen.edits["method"] == "lora"


async def test_f1_opens_help_for_the_focused_field(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="configure", probe_kwargs=FAKE)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#f-learning_rate", Input).focus()
        await pilot.press("f1")
        await pilot.pause()
        text = str(app.screen.query_one("#help-text", Static).render())
        assert "Configure" in text and "Focused: learning_rate" in text
        assert "2e-4" in text  # the seeds' guidance for it
        assert "Plan values" in text  # the keys of the screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.STEP == "configure"


@pytest.mark.parametrize("step", ["decide", "hardware", "model", "configure", "evaluate"])
async def test_footer_keys_fit_at_80_columns(tmp_path: Path, step: str) -> None:
    app = make_app(tmp_path, step="train" if step == "evaluate" else step, probe_kwargs=FAKE)
    if step == "evaluate":  # a finished run, so every Evaluate key is live
        app._attach_on_mount = write_run(tmp_path / "run-fixture", recorded_events(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.6)
        if step == "evaluate":
            from types import SimpleNamespace

            from tuitune.tui import messages as m

            app.eval_results = m.EvaluationFinished(SimpleNamespace(), [], None)  # no real one
            app.goto("evaluate")
            await pilot.pause(0.6)
        shown = [
            (app.get_key_display(a.binding), a.binding.description)
            for a in app.screen.active_bindings.values()
            if a.binding.show
        ]
        shown = list(dict.fromkeys(shown))
        width = sum(len(k) + len(d) + 2 for k, d in shown)  # compact footer: "key desc "
        assert width <= 80, shown
        if step == "evaluate":
            assert ("t", "Chat") in shown


async def test_keymap_from_the_config_file_remaps_next(tmp_path: Path, monkeypatch) -> None:
    from tuitune.core import paths
    from tuitune.tui.keymap import load_keymap

    cfg = paths.config_dir()
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('[keymap]\nnext = "f5"\n')
    app = make_app(tmp_path, step="decide")
    app._user_keymap = load_keymap()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        assert app.screen.STEP == "hardware"


def test_a_bad_keymap_is_refused_with_the_ids(tmp_path: Path) -> None:
    from tuitune.core import paths
    from tuitune.core.errors import TuituneError
    from tuitune.tui.keymap import load_keymap

    cfg = paths.config_dir()
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('[keymap]\nnxt = "f5"\n')
    with pytest.raises(TuituneError, match="unknown binding id 'keymap.nxt'.*next"):
        load_keymap()


async def test_the_train_step_refuses_a_plan_that_does_not_fit_until_asked_again(
    tmp_path: Path, monkeypatch
) -> None:
    """The wizard's fit gate is core.training.plan.fit_refusal, as replay's: Start on a plan that does
    not fit (a 7B full fine-tune on a 24 GB GPU) launches nothing and says why; a second
    Start is the explicit override."""
    from tuitune.core import paths

    app = make_app(tmp_path, step="train", probe_kwargs=FAKE)
    app.session.model.ref = "Qwen/Qwen2.5-7B-Instruct"
    app.session.spec = {"method": "full"}
    launched = []
    monkeypatch.setattr(
        "tuitune.core.training.plan.launch_plan", lambda *a, **k: launched.append(k.get("force"))
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.start_training()
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert any("not launched" in t and "does not fit" in t for t in said), said
        assert app.launch_refused and launched == []
        assert not any(paths.runs_dir().glob("*")) if paths.runs_dir().exists() else True
        app.start_training()
        for _ in range(100):  # the launch worker; after it the App tails the (empty) run
            if launched:
                break
            await pilot.pause(0.1)
        assert launched == [True]
