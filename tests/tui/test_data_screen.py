"""The Data and Template screens: column mapping, named warnings, the failed curation report,
trained turns of a tool conversation."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from textual.widgets import Input, Static
from wizard_kit import make_app

from tuitune.core.session import load_session

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


async def _settle(pilot) -> None:
    from textual.worker import WorkerCancelled

    for _ in range(3):
        with contextlib.suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.2)


async def test_columns_field_maps_a_question_answer_file(tmp_path: Path, tiny_model_plain) -> None:
    app = make_app(tmp_path, model=tiny_model_plain, step="data")
    app.session.data.train = [str(FIXTURES / "question_answer.csv")]
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "could not be read" in summary and "--columns" in summary
        app.screen.query_one("#columns", Input).value = "prompt=question,completion=answer"
        await pilot.press("ctrl+r")
        await _settle(pilot)
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "prompt_completion" in summary and "[columns] --columns" in summary
        await pilot.press("ctrl+n")
        await _settle(pilot)
        assert app.screen.STEP == "template"
    saved = load_session(app.session.path)
    assert saved.data.columns == {"prompt": "question", "completion": "answer"}


async def test_warnings_and_failed_curation_report(tmp_path: Path, tiny_model_plain) -> None:
    mllm = tmp_path / "lf"
    shutil.copytree(FIXTURES / "llamafactory", mllm)
    app = make_app(tmp_path, model=tiny_model_plain, step="data")
    app.session.data.train = [str(mllm / "mllm_demo.json")]
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "column 'images': dropped" in summary and "literal <image>" in summary
        empty = tmp_path / "empty.jsonl"
        empty.write_text('{"instruction": "a", "output": ""}\n')
        app.screen.query_one("#files", Input).value = str(empty)
        await pilot.press("ctrl+r")
        await _settle(pilot)
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "no training rows left after curation" in summary
        report = str(app.screen.query_one("#curation", Static).render())
        assert "Drop empty or role-broken rows: 1 dropped" in report
        assert "empty assistant answer" in report


async def test_template_screen_counts_trained_turns(tmp_path: Path, tiny_model_plain) -> None:
    app = make_app(tmp_path, model=tiny_model_plain, step="data")
    app.session.data.train = [str(FIXTURES / "llamafactory" / "v1_sft_demo.jsonl")]
    app.session.data.val_ratio = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("ctrl+n")
        await _settle(pilot)
        await pilot.press("]")
        await pilot.pause(0.2)
        info = str(app.screen.query_one("#template-info", Static).render())
        assert "Loss: assistant turns" in info
        assert "trained turns: 2 assistant; masked: 2 user" in info


async def test_template_screen_shows_trained_segments(tmp_path: Path, tiny_model_plain) -> None:
    """Axolotl input_output rows: the Template screen's preview trains the labelled
    segments, says no chat template is used, and does not claim ChatML stands in."""
    from tuitune.tui.screens.template import template_warnings

    app = make_app(tmp_path, model=tiny_model_plain, step="data")
    app.session.data.train = [str(FIXTURES / "axolotl_input_output.jsonl")]
    app.session.data.val_ratio = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("ctrl+n")
        await _settle(pilot)
        info = str(app.screen.query_one("#template-info", Static).render())
        assert "Loss: labelled segments" in info
        assert "trained segments: 3; masked: 1" in info
        assert "no special tokens added" in info
        p = app.screen.preview
        pv = p["previews"][0]
        trained = "".join(t for t, on in pv.spans if on)
        assert trained == "<|endoftext|>Hello\nhi there!. farewell<|im_end|>"
        assert not any("ChatML" in w for w in template_warnings(p, pv))
