"""Sessions named from what they hold, Start's list, --step refusals, Finish's paths, and
the Decide verdict moved by red flags and the measured example count (issue 15)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import OptionList, Static  # noqa: E402
from wizard_kit import make_app, recorded_events, settle, write_run  # noqa: E402

from tuitune.core.errors import TuituneError  # noqa: E402
from tuitune.core.models import session_names  # noqa: E402
from tuitune.core.session import Session, load_session  # noqa: E402
from tuitune.tui.defaults import new_session  # noqa: E402
from tuitune.tui.widgets.yes_box import YesBox  # noqa: E402


def test_a_session_is_named_after_method_model_and_task() -> None:
    s = new_session()
    assert session_names.refresh_name(s) == "LoRA on SmolLM2-135M-Instruct, json_extract"
    s.spec["method"] = "dpo"
    assert session_names.refresh_name(s).startswith("DPO on SmolLM2-135M-Instruct")
    session_names.set_user_name(s, "my extractor")
    s.spec["method"] = "full"
    assert session_names.refresh_name(s) == "my extractor"  # the user's name stays


def test_repeated_names_get_a_number() -> None:
    assert session_names.distinct_labels(["a", "b", "a", "a"]) == ["a", "b", "a (2)", "a (3)"]


async def test_start_lists_date_method_and_no_two_entries_alike(tmp_path: Path) -> None:
    for _ in range(2):
        s = new_session()
        session_names.refresh_name(s)
        s.save()
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        ol = app.screen.query_one(OptionList)
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        resumes = [label for label in labels if "Resume" in label]
        assert len(resumes) == 2 and len(set(resumes)) == 2
        assert all("LoRA" in r and "-" in r.split("  ")[2] for r in resumes)  # date, method
        assert any("(2)" in r for r in resumes)


async def test_a_saved_session_is_renamed_when_its_method_changes(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="decide")
    async with app.run_test(size=(80, 24)) as pilot:
        app.session.spec["method"] = "dpo"
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert load_session(tmp_path / "session.json").name.startswith("DPO on")


def _wizard_args(**kw) -> argparse.Namespace:
    return argparse.Namespace(session=kw.get("session"), step=kw.get("step"))


def test_step_template_without_data_is_refused(tmp_path: Path) -> None:
    from tuitune.commands import wizard

    s = Session()
    s.path = str(tmp_path / "empty.json")
    s.save()
    with pytest.raises(TuituneError, match="template step needs training data.*--step data"):
        wizard.run(_wizard_args(session=s.path, step="template"))
    with pytest.raises(TuituneError, match="evaluate step needs a finished run"):
        wizard.run(_wizard_args(session=s.path, step="evaluate"))
    assert wizard.missing_inputs(new_session(), "template") is None


async def test_step_template_reads_the_data_first(tmp_path: Path, tiny_model_plain: Path) -> None:
    app = make_app(tmp_path, model=tiny_model_plain, step="template")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, rounds=8)
        assert app.screen.STEP == "template"
        assert "No data yet" not in str(app.screen.query_one("#template-info", Static).render())


async def test_finish_leaves_the_paths_of_report_adapter_and_exports(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tuitune.tui import messages as m

    run = write_run(tmp_path / "run-fixture", recorded_events(10))
    (run.adapter).mkdir()
    app = make_app(tmp_path, step="train")
    app._attach_on_mount = run
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.6)
        app.eval_results = m.EvaluationFinished(SimpleNamespace(), [], tmp_path / "report.md")
        app.answers("evaluate")["exports"] = {"gguf": str(tmp_path / "model.gguf")}
        app.goto("evaluate")
        await pilot.pause(0.3)
        await pilot.press("ctrl+n")
        await pilot.pause()
    text = "\n".join(app.finish_lines)
    assert "report.md" in text and "adapter" in text and "model.gguf" in text
    assert "session.json" in text


async def test_red_flags_move_the_verdict_and_going_on_is_recorded(tmp_path: Path) -> None:
    app = make_app(tmp_path, step="decide")
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#r-realtime_knowledge", YesBox).value = True
        await pilot.pause()
        verdict = str(app.screen.query_one("#verdict", Static).render())
        assert "Not yet" in verdict and "use RAG" in verdict
        assert "cannot both hold" in verdict  # no documents needed, yet real-time knowledge
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "decide"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "hardware"
    rec = load_session(tmp_path / "session.json").answers["decide"]
    assert rec["verdict"] == "not_yet" and rec["proceed_against"] is True


async def test_the_measured_example_count_revisits_the_verdict(
    tmp_path: Path, tiny_model_plain: Path
) -> None:
    app = make_app(tmp_path, model=tiny_model_plain, step="data")  # 40 examples
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, rounds=6)
        assert app.session.answers["decide"]["verdict"] == "not_yet"
        assert app.session.answers["decide"]["measured_examples"] == 40
        app.goto("decide")
        await pilot.pause(0.3)
        box = app.screen.query_one("#r-examples_lt_100", YesBox)
        assert box.value is True and box.disabled and "measured on Data: 40" in str(box.label)
        assert "fewer than 100 examples" in str(app.screen.query_one("#verdict", Static).render())
