"""Pilot tests of the wizard: navigation, each screen's behaviour, the App-owned run tail."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Static  # noqa: E402
from wizard_kit import make_app, recorded_events, settle, write_run  # noqa: E402

from tuitune.core.session import load_session  # noqa: E402
from tuitune.tui import messages as m  # noqa: E402
from tuitune.tui.app import TuituneApp  # noqa: E402
from tuitune.tui.defaults import new_session  # noqa: E402
from tuitune.tui.widgets.loss_plot import LossPlot  # noqa: E402
from tuitune.tui.widgets.yes_box import YesBox  # noqa: E402


async def test_enter_on_start_opens_decide_and_saves_the_session(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.STEP == "start"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.STEP == "decide"
    saved = load_session(tmp_path / "session.json")
    assert saved.answers["start"] == {"choice": "new"}


async def test_decide_verdict_follows_the_answers_and_records_going_against(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, step="decide")
    async with app.run_test(size=(80, 24)) as pilot:
        verdict = app.screen.query_one("#verdict", Static)
        assert "Fine-tune" in str(verdict.render())  # the quickstart answers
        app.screen.query_one("#q-prompt_solves", YesBox).value = True
        await pilot.pause()
        assert "prompt engineering" in str(verdict.render())
        await pilot.press("ctrl+n")  # first Next only warns
        await pilot.pause()
        assert app.screen.STEP == "decide"
        assert "again" in str(verdict.render())
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "hardware"
    rec = load_session(tmp_path / "session.json").answers["decide"]
    assert rec["verdict"] == "prompt" and rec["proceed_against"] is True


async def test_going_back_keeps_state(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="decide")
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#g-persona", YesBox).value = True
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "hardware"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.STEP == "decide"
        assert app.screen.query_one("#g-persona", YesBox).value is True


async def test_configure_refuses_invalid_values_inline(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="configure")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lr = app.screen.query_one("#f-learning_rate", Input)
        assert lr.value == "0.0002"  # LoRA's method default, from the plan
        assert "method" in str(app.screen.query_one("#s-learning_rate", Static).render())
        lr.value = "fast"
        await pilot.pause()
        assert app.screen.query_one("#row-learning_rate").has_class("-invalid")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "configure"
        lr.value = "1e-4"
        app.screen.query_one("#f-max_steps", Input).value = "3"
        await pilot.pause()
        assert not app.screen.query_one("#row-learning_rate").has_class("-invalid")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen.STEP == "train"
    spec = load_session(tmp_path / "session.json").train_spec()
    assert spec.learning_rate == 1e-4 and spec.max_steps == 3


async def test_configure_hides_lora_fields_for_full_fine_tuning(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="configure")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.screen.query_one("#row-lora_r").display
        app.screen.query_one("#f-method").value = "full"
        await pilot.pause()
        assert not app.screen.query_one("#row-lora_r").display


async def test_train_screen_replays_a_recorded_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run-fixture", recorded_events(20))
    app = TuituneApp(new_session(), attach=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.6)
        assert app.screen.STEP == "train"
        view = app.run_view
        assert view is not None and view.finished
        assert view.curves.train_steps == list(range(1, 21))
        assert view.curves.eval_steps == [5, 10, 15, 20]
        await pilot.pause(0.5)
        assert app.screen.query_one(LossPlot).points == 24
        status = str(app.screen.query_one("#train-status", Static).render())
        assert "step 20/20" in status and "FINISHED" in status
        assert str(app.screen.query_one("#next").label) == "Evaluate >"


async def test_attached_run_keeps_tailing_new_events(tmp_path: Path) -> None:
    events = recorded_events(10, final=None)
    run = write_run(tmp_path / "run-live", events[:6])
    app = TuituneApp(new_session(), attach=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        n = len(app.run_view.curves.train_steps)
        with open(run.events, "a") as f:
            for e in events[6:]:
                f.write(json.dumps(e) + "\n")
        await pilot.pause(0.8)
        assert len(app.run_view.curves.train_steps) == 10 > n
        assert app.training  # no final event yet


async def test_detach_leaves_the_run_and_goes_to_start(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run-live", recorded_events(6, final=None))
    app = TuituneApp(new_session(), attach=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.4)
        await pilot.press("d")
        await pilot.pause()
        assert app.screen.STEP == "start"
        assert app.run_view is None
    assert run.events.exists()  # the viewer never touches the run


async def test_evaluate_colours_deltas_by_direction(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run-fixture", recorded_events(5))
    app = TuituneApp(new_session(), attach=run, start_step="train")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.4)
        app.eval_status = "x"  # keep the screen from starting a real evaluation
        app.goto("evaluate")
        await pilot.pause()
        results = SimpleNamespace(
            generations=[{"prompt": "Ann, 30, Oslo", "before": "Sure!", "after": '{"name": "Ann"}'}]
        )
        app.post_message(
            m.EvaluationFinished(
                results,
                [
                    ("json_valid", "50", "0.10", "0.90", "+0.80"),
                    ("eval_loss", "50", "2.1", "1.2", "-0.90"),
                ],
                tmp_path / "report.md",
            )
        )
        await pilot.pause(0.7)
        table = app.screen.query_one("#summary", DataTable)
        assert table.row_count == 2
        assert "green" in str(table.get_row_at(0)[4].style)
        assert "green" in str(table.get_row_at(1)[4].style)  # a lower loss is better
        gens = str(app.screen.query_one("#generations", Static).render())
        assert "Sure!" in gens and '{"name": "Ann"}' in gens


@pytest.fixture
def data_app(tmp_path: Path, tiny_model_plain: Path) -> TuituneApp:
    return make_app(tmp_path, model=tiny_model_plain, step="data")


async def test_data_and_template_screens_show_core_results(data_app: TuituneApp) -> None:
    app = data_app
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause()
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "messages" in summary and "38 train / 2 validation" in summary  # 5% split
        assert "fewer than 100" in summary  # the red flag for 40 examples
        assert app.screen.query_one("#preview", DataTable).row_count == 38
        assert "tokens per example" in str(app.screen.query_one("#lengths", Static).render())
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "template"
        await settle(pilot)
        await pilot.pause()
        info = str(app.screen.query_one("#template-info", Static).render())
        assert "trained" in info and "Loss: assistant turns" in info
        rendered = app.screen.query_one("#rendered", Static).render()
        styles = {str(span.style) for span in rendered.spans}
        assert any("underline" in s for s in styles) and any(s == "dim" for s in styles)
    saved = load_session(app.session.path)
    assert saved.answers["data"]["train_rows"] == 38


async def test_hardware_shows_fake_gpu_fit_table_and_recommendation(tmp_path: Path) -> None:
    from tuitune.core.hardware.probe import FakeGpu, FakeNVML

    fake = FakeNVML(
        [FakeGpu(name="NVIDIA GeForce RTX 4090", total_gib=24.0, used_gib=1.0, cc=(8, 9))]
    )
    app = make_app(tmp_path, step="hardware", probe_kwargs={"nvml": fake})
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause()
        devices = app.screen.query_one("#devices", DataTable)
        assert "RTX 4090" in devices.get_row_at(0)[0]
        assert devices.get_row_at(0)[5] == "yes"  # bf16 on compute capability 8.9
        fits = app.screen.query_one("#fits", DataTable)
        verdicts = {
            str(fits.get_row_at(i)[j]).split()[-1]
            for i in range(fits.row_count)
            for j in range(1, len(fits.columns))
        }
        assert {"fits", "no"} <= verdicts  # a 24 GB card fits small models, not 70B full
        rec = str(app.screen.query_one("#recommendation", Static).render())
        assert "Plan: lora" in rec and "bf16" in rec
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "model"
    answers = load_session(tmp_path / "session.json").answers["hardware"]
    assert answers["device"] == "cuda" and answers["recommended"]["bf16"] is True


def test_attach_plain_prints_one_line_per_event(tmp_path: Path, capsys) -> None:
    from tuitune.cli import main

    run = write_run(tmp_path / "run-fixture", recorded_events(5))
    assert main(["attach", str(run.root), "--plain", "--no-follow"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("start lora")
    assert out[2].startswith("step 1  loss 2.6")
    assert any(line.startswith("eval step 5  eval_loss") for line in out)
    assert out[-1].startswith("finished")


async def test_start_offers_resume_and_attach(tmp_path: Path) -> None:
    from tuitune.core import paths

    saved = new_session()
    saved.name = "my earlier session"
    saved.save()
    run = write_run(paths.runs_dir() / "run-fixture", recorded_events(4))
    (run.run_json).write_text(json.dumps({"run_id": "run-fixture", "pid": 0, "method": "lora"}))
    app = TuituneApp(new_session())
    async with app.run_test(size=(120, 40)) as pilot:
        from textual.widgets import OptionList

        await settle(pilot)  # the runs are listed by a worker
        await pilot.pause()
        ol = app.screen.query_one(OptionList)
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        assert any("Resume my earlier session" in x for x in labels)
        attach = next(i for i, x in enumerate(labels) if "Attach run-fixture" in x)
        assert "finished" in labels[attach]
        ol.highlighted = attach
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.screen.STEP == "train"
        assert app.run_view is not None and app.run_view.finished


def test_a_session_from_elsewhere_is_copied_not_written(tmp_path: Path) -> None:
    from tuitune.tui.defaults import copy_session

    original = new_session()
    original.data.train = ["data/train.jsonl"]
    path = original.save(tmp_path / "colleague.json")
    before = path.read_text()
    copy = copy_session(load_session(path))
    assert copy.id != original.id and copy.path == ""
    assert copy.data.train == [str((tmp_path / "data" / "train.jsonl").resolve())]
    copy.save()
    assert path.read_text() == before


async def test_model_screen_lists_the_catalog_and_refuses_a_bad_path(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="model")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause()
        table = app.screen.query_one("#catalog", DataTable)
        ids = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert "Qwen/Qwen2.5-7B-Instruct" in ids and "microsoft/phi-4" in ids
        assert all("B" in str(table.get_row_at(i)[1]) for i in range(table.row_count))  # GiB/MiB
        table.move_cursor(row=ids.index("Qwen/Qwen2.5-7B-Instruct"))
        await pilot.press("ctrl+u")
        assert app.screen.query_one("#model-ref", Input).value == "Qwen/Qwen2.5-7B-Instruct"
        app.screen.query_one("#model-ref", Input).value = str(tmp_path / "nowhere")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "model"
        await settle(pilot)
        assert app.screen.STEP == "model"
        status = str(app.screen.query_one("#model-status", Static).render())
        assert "Refused" in status and "not a directory" in status


def test_template_warnings_name_masked_labels_and_missing_eos() -> None:
    from tuitune.tui.screens.template import template_warnings

    preview = SimpleNamespace(
        input_ids=[1, 5, 6, 2],
        trained=[False, False, False, False],
        trained_count=0,
        truncated=False,
    )
    info = {
        "had_template": False,
        "eos": 2,
        "eos_text": "</s>",
        "plan": SimpleNamespace(fallback_template=True),  # ChatML stands in for the template
    }
    warnings = template_warnings(info, preview)
    assert any("no chat template" in w for w in warnings)
    assert any("every label is masked" in w for w in warnings)
    assert any("EOS '</s>'" in w for w in warnings)
    preview.trained = [False, True, True, True]
    preview.trained_count = 3
    assert template_warnings({**info, "had_template": True}, preview) == []
