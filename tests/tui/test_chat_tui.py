"""The Chat screen: loads and generates in thread workers, streams into two panes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.core.runs.rundir import RunDir
from tuitune.core.ship.chat import Decoding
from tuitune.tui.screens.chat import ChatApp, ChatScreen

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lora_run(tiny_model, data, tmp_path_factory) -> RunDir:  # noqa: F811
    root = tmp_path_factory.mktemp("chat-tui") / "run"
    rc, run = train(make_spec(tiny_model, data, root, max_steps=3, save_steps=3))
    assert rc == 0
    run.data.mkdir(exist_ok=True)
    (run.data / "eval.jsonl").write_text(Path(data["eval"]).read_text())
    return run


async def _until(pilot, predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


@pytest.mark.asyncio
async def test_chat_screen_streams_both_sides_and_takes_commands(lora_run):
    seen: list[type] = []
    app = ChatApp(lora_run, decoding=Decoding(max_new_tokens=10))
    async with app.run_test(size=(100, 30), message_hook=lambda m: seen.append(type(m))) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await _until(pilot, lambda: screen.chat is not None and screen.status.startswith("ready"))
        assert "greedy" in str(app.screen.query_one("#chat-top").render())
        await pilot.click("#chat-input")
        await pilot.press(*"/set max_new_tokens 6", "enter")
        assert screen.chat.decoding.max_new_tokens == 6
        assert "max_new_tokens 6" in str(screen.query_one("#chat-top").render())
        for key in "Ada is 36.":
            await pilot.press(key if key != " " else "space")
        await pilot.press("enter")
        await _until(pilot, lambda: not screen.busy)
        turn = screen.chat.state.turns[0]
        assert turn["user"] == "Ada is 36." and turn["base"] is not None and turn["tuned"]
        for side in ("base", "tuned"):
            shown = str(screen.query_one(f"#text-{side}").render())
            assert turn[side].strip()[:10] in shown
            assert "tok/s" in shown
        assert ChatScreen.Chunk in seen and ChatScreen.ReplyDone in seen  # posted by workers
        await pilot.press("ctrl+r")
        assert screen.chat.state.turns == []
        await pilot.press("f2")  # a held-out prompt from the run's validation split
        assert screen.query_one("#chat-input").value
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.asyncio
async def test_evaluate_screen_opens_the_chat_with_t(lora_run):
    from tuitune.tui.app import TuituneApp
    from tuitune.tui.defaults import new_session

    app = TuituneApp(new_session(), attach=lora_run, start_step="train")
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(pilot, lambda: app.run_view is not None and app.run_view.finished)
        app.eval_status = "x"  # keep the screen from starting a real evaluation
        app.goto("evaluate")
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        chat = app.screen
        assert isinstance(chat, ChatScreen) and chat.run.root == lora_run.root
        await _until(pilot, lambda: chat.chat is not None)
        assert f"chat:{lora_run.root}" in app.cache  # reopening does not load again
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.id == "evaluate" or type(app.screen).__name__ == "EvaluateScreen"
