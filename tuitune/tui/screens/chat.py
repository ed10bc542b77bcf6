"""The playground screen: base and tuned answers side by side, streamed as they are generated.

The model loads and generates in thread workers (``@work(thread=True)``); the workers never
touch widgets: they post ``ChatScreen.Chunk`` / ``ReplyDone`` / ``Loaded`` / ``Failed``
messages and the screen redraws from those. Typing ``/set NAME VALUE``, ``/system TEXT``,
``/reset`` or ``/example`` in the input box changes the settings shown on the top line. The
loaded ``ChatSession`` is kept on the App, so reopening the screen does not load again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tuitune.core.runs.rundir import RunDir

SIDES = ("base", "tuned")
TITLE = {"base": "base (adapter off)", "tuned": "tuned"}
STYLE = {"base": "yellow", "tuned": "green"}
HELP = "/set NAME VALUE  /system TEXT|off  /example [N]  /reset"

CSS = """
ChatScreen { layout: vertical; }
#chat-top { height: auto; max-height: 3; background: $panel; padding: 0 1; }
#chat-panes { height: 1fr; }
.chat-pane { width: 1fr; border: round $primary; padding: 0 1; }
#pane-base { border: round $warning; }
#pane-tuned { border: round $success; }
#chat-input { height: 3; }
"""


class ChatScreen(Screen):
    """Talk to a run: the same message to the base and the tuned model."""

    DEFAULT_CSS = CSS
    HELP_TOPIC = "chat"  # F1 in the wizard shows the chat's help
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "close", "Back", id="chat-back"),
        Binding("ctrl+s", "stop", "Stop", id="chat-stop"),
        Binding("ctrl+r", "reset", "New chat", id="chat-reset"),
        Binding("f2", "example", "Example", id="chat-example"),  # ctrl+e is the Input's End
    ]

    @dataclass
    class Loaded(Message):
        chat: Any  # the loaded ChatSession
        key: str

    @dataclass
    class Chunk(Message):
        side: str
        text: str

    @dataclass
    class ReplyDone(Message):
        side: str
        text: str
        new_tokens: int
        tokens_per_second: float
        stopped: bool

    @dataclass
    class Failed(Message):
        error: str

    def __init__(
        self,
        run: RunDir,
        *,
        decoding: Any = None,
        system: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.run = run
        self._decoding = decoding
        self._system = system  # None: the training data's system prompt
        self.chat: Any = None  # tuitune.core.ship.chat.ChatSession
        self.busy = False
        self.status = "loading the model..."
        self.pending: dict[str, str] = {"base": "", "tuned": ""}
        self.stats: dict[str, str] = {"base": "", "tuned": ""}
        self._examples: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="chat-top")
        with Horizontal(id="chat-panes"):
            for side in SIDES:
                with VerticalScroll(id=f"pane-{side}", classes="chat-pane") as pane:
                    pane.border_title = TITLE[side]
                    yield Static(id=f"text-{side}")
        yield Input(placeholder=f"message the models; {HELP}", id="chat-input")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#chat-input", Input).focus()
        cache = getattr(self.app, "cache", None)
        key = f"chat:{self.run.root}"
        if isinstance(cache, dict) and key in cache:
            self.chat = cache[key]
            self.status = "ready"
        else:
            self._load(key)
        self.redraw()

    # -- workers (never touch widgets) ------------------------------------------------------
    @work(thread=True, group="chat-load", exclusive=True, exit_on_error=False)
    def _load(self, key: str) -> None:
        try:
            from tuitune.core.ship.chat import open_chat, quiet_libraries

            quiet_libraries()
            chat = open_chat(self.run, self._decoding)
            if self._system is not None:
                chat.set_system(self._system)
            chat.load()
        except Exception as e:  # noqa: BLE001 - shown as one line
            self.post_message(self.Failed(str(e).splitlines()[0][:300]))
            return
        self.post_message(self.Loaded(chat, key))

    @work(thread=True, group="chat-generate", exclusive=True, exit_on_error=False)
    def _generate(self) -> None:
        chat = self.chat
        try:
            for side in SIDES:
                for chunk in chat.stream(side):
                    self.post_message(self.Chunk(side, chunk))
                r = chat.replies[side]
                self.post_message(
                    self.ReplyDone(side, r.text, r.new_tokens, r.tokens_per_second, r.stopped)
                )
                if r.stopped:
                    break
        except Exception as e:  # noqa: BLE001
            self.post_message(self.Failed(str(e).splitlines()[0][:300]))

    # -- messages from the workers ------------------------------------------------------------
    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.chat = chat = message.chat
        cache = getattr(self.app, "cache", None)
        if isinstance(cache, dict):
            cache[message.key] = chat
        self.status = f"ready ({chat.describe_load()})"
        self.redraw()

    @on(Chunk)
    def _chunk(self, message: Chunk) -> None:
        self.pending[message.side] += message.text
        status = f"{message.side} is answering..."
        if status != self.status:
            self.status = status
            self.redraw()
        else:
            self._draw_side(message.side)

    @on(ReplyDone)
    def _reply_done(self, message: ReplyDone) -> None:
        self.pending[message.side] = ""
        self.stats[message.side] = (
            f"{message.new_tokens} tok, {message.tokens_per_second:.1f} tok/s"
            + (", stopped" if message.stopped else "")
        )
        if message.side == "tuned" or message.stopped:
            self.busy = False
            self.status = "ready"
        self.redraw()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.busy = False
        self.status = f"error: {message.error}"
        self.notify(message.error, severity="error", timeout=10)
        self.redraw()

    # -- input and actions ------------------------------------------------------------------
    @on(Input.Submitted, "#chat-input")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.chat is None or not self.chat.loaded:
            self.notify("the model is still loading", severity="warning")
            return
        if self.busy:
            self.notify("still answering: ctrl+s stops it", severity="warning")
            return
        event.input.value = ""
        if text.startswith("/"):
            self._command(text)
        else:
            self.ask(text)

    def ask(self, text: str) -> None:
        """Send a message to both sides (generation runs in a thread worker)."""
        self.chat.send(text)
        self.pending = {"base": "", "tuned": ""}
        self.stats = {"base": "", "tuned": ""}
        self.busy = True
        self.status = "base is answering..."
        self.redraw()
        self._generate()

    def _command(self, text: str) -> None:
        from tuitune.core.errors import TuituneError

        cmd, _, rest = text.partition(" ")
        rest = rest.strip()
        try:
            if cmd == "/set":
                name, _, value = rest.partition(" ")
                self.chat.decoding = self.chat.decoding.with_setting(name, value.strip())
            elif cmd == "/system":
                self.chat.set_system("" if rest == "off" else rest)
            elif cmd == "/reset":
                self.action_reset()
            elif cmd == "/example":
                self.action_example(int(rest) if rest.isdigit() else None)
            else:
                self.notify(f"unknown command {cmd}; {HELP}", severity="warning")
        except TuituneError as e:
            self.notify(str(e), severity="error")
        self.redraw()

    def action_close(self) -> None:
        if self.chat is not None and self.busy:
            self.chat.stop()
        self.dismiss(None)

    def action_stop(self) -> None:
        if self.chat is not None and self.busy:
            self.chat.stop()

    def action_reset(self) -> None:
        if self.busy or self.chat is None:
            return
        self.chat.reset()
        self.stats = {"base": "", "tuned": ""}
        self.redraw()

    def action_example(self, index: int | None = None) -> None:
        """Put a held-out prompt from the evaluation set in the input box."""
        from tuitune.core.ship.chat import example_prompts

        if self._examples is None:
            self._examples = example_prompts(self.run)
        if not self._examples:
            self.notify("no held-out prompts found for this run", severity="warning")
            return
        turns = len(self.chat.state.turns) if self.chat else 0
        i = index if index is not None else turns
        box = self.query_one("#chat-input", Input)
        box.value = self._examples[i % len(self._examples)]
        box.focus()

    # -- drawing -----------------------------------------------------------------------------
    def redraw(self) -> None:
        top = Text(no_wrap=False)
        top.append(f"chat with {self.run.id}", style="bold")
        top.append(f"  {self.status}\n", style="dim" if self.status == "ready" else "bold")
        if self.chat is not None:
            top.append("decoding: ", style="bold")
            top.append(self.chat.decoding.describe())
            system = self.chat.state.system
            top.append("  system: ", style="bold")
            top.append((system[:90] + "...") if len(system) > 90 else (system or "(none)"))
        self.query_one("#chat-top", Static).update(top)
        for side in SIDES:
            self._draw_side(side)

    def _draw_side(self, side: str) -> None:
        text = Text()
        turns = self.chat.state.turns if self.chat is not None else []
        for i, turn in enumerate(turns):
            text.append("you: ", style="bold")
            text.append(turn["user"] + "\n")
            answer = turn.get(side)
            last = i == len(turns) - 1
            if answer is None and last:
                answer = self.pending[side] + ("▌" if self.busy else "")
            text.append((answer or "") + "\n", style=STYLE[side])
            if last and self.stats[side]:
                text.append(f"[{self.stats[side]}]\n", style="dim")
            text.append("\n")
        if not turns:
            text.append("(type a message below; F2 puts a held-out example there)", style="dim")
        self.query_one(f"#text-{side}", Static).update(text)
        self.query_one(f"#pane-{side}", VerticalScroll).scroll_end(animate=False)


class ChatApp(App[int]):
    """The Chat screen on its own (``tuitune chat RUN --tui``)."""

    TITLE = "tuitune chat"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[Binding]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, run: RunDir, *, decoding: Any = None, system: str | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self.run_dir = run
        self.decoding = decoding
        self.system = system
        self.cache: dict[str, Any] = {}

    def on_mount(self) -> None:
        screen = ChatScreen(self.run_dir, decoding=self.decoding, system=self.system)
        self.push_screen(screen, callback=lambda _: self.exit(0))
