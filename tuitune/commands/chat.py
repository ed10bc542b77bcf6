"""``tuitune chat RUN``: talk to a run's base and tuned models side by side in a terminal.

Each message is answered by the base (adapter disabled) and then the tuned model, streamed
token by token, with the run's chat template and the same decoding settings. In a terminal
the two answers fill two panels side by side (rich Live); piped, they are plain lines.
"""

from __future__ import annotations

import argparse

NAME = "chat"
HELP = "chat with a run: base and tuned answers side by side, streamed"

COMMANDS = (
    ("/settings", "show the decoding settings and the system prompt"),
    ("/set NAME VALUE", "change a setting: greedy, temperature, top_p, max_new_tokens, seed"),
    ("/system [TEXT|off]", "show, set or clear the system prompt"),
    ("/example [N]", "send held-out prompt N from the evaluation set"),
    ("/reset", "start a new conversation"),
    ("/quit", "leave (also Ctrl-D)"),
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or id (see tuitune runs)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="tokens per answer")
    p.add_argument("--temperature", type=float, help="sample at this temperature (default greedy)")
    p.add_argument("--top-p", type=float, help="nucleus sampling share (implies sampling)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed, the same for both sides")
    p.add_argument("--system", help="system prompt (default: the one the training data used)")
    p.add_argument("--plain", action="store_true", help="plain lines even in a terminal")
    p.add_argument("--tui", action="store_true", help="the wizard's Chat screen, full screen")


def run(args: argparse.Namespace) -> int:
    import sys

    from tuitune.core.runs.rundir import find_run
    from tuitune.core.ship.chat import Decoding, open_chat, quiet_libraries

    quiet_libraries()

    decoding = Decoding(max_new_tokens=args.max_new_tokens, seed=args.seed)
    if args.temperature is not None:
        decoding = decoding.with_setting("temperature", str(args.temperature))
    if args.top_p is not None:
        decoding = decoding.with_setting("top_p", str(args.top_p))
    r = find_run(args.run)
    if args.tui:
        from tuitune.tui.screens.chat import ChatApp

        return ChatApp(r, decoding=decoding, system=args.system).run() or 0
    chat = open_chat(r, decoding)
    if args.system is not None:
        chat.set_system(args.system)
    fancy = sys.stdout.isatty() and sys.stdin.isatty() and not args.plain
    ui = _RichUI(chat) if fancy else _PlainUI(chat)
    ui.say(f"loading {r.id} ({chat.target.method}) ...")
    chat.load()
    ui.say(chat.describe_load())
    _settings(ui, chat)
    ui.say("type a message; /help for commands")
    return _loop(ui, chat, r)


def _settings(ui: _PlainUI, chat) -> None:  # noqa: ANN001 - ChatSession, imported lazily
    ui.say(f"decoding: {chat.decoding.describe()}")
    system = chat.state.system
    ui.say(
        f"system: {system[:200] + ('...' if len(system) > 200 else '')}"
        if system
        else "system: (none)"
    )


def _loop(ui: _PlainUI, chat, run) -> int:  # noqa: ANN001
    from tuitune.core.errors import TuituneError
    from tuitune.core.ship.chat import example_prompts

    examples: list[str] | None = None
    while True:
        try:
            line = ui.ask()
        except (EOFError, KeyboardInterrupt):
            ui.say("")
            return 0
        if line is None:
            return 0
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, rest = line.partition(" ")
            rest = rest.strip()
            try:
                if cmd in ("/quit", "/exit", "/q"):
                    return 0
                if cmd == "/help":
                    for name, text in COMMANDS:
                        ui.say(f"  {name:<20} {text}")
                elif cmd == "/settings":
                    _settings(ui, chat)
                elif cmd == "/set":
                    name, _, value = rest.partition(" ")
                    chat.decoding = chat.decoding.with_setting(name, value.strip())
                    ui.say(f"decoding: {chat.decoding.describe()}")
                elif cmd == "/system":
                    if rest:
                        chat.set_system("" if rest == "off" else rest)
                    _settings(ui, chat)
                elif cmd == "/reset":
                    chat.reset()
                    ui.say("conversation cleared")
                elif cmd == "/example":
                    if examples is None:
                        examples = example_prompts(run)
                    if not examples:
                        ui.say("no held-out prompts found for this run")
                        continue
                    i = int(rest) if rest.isdigit() else len(chat.state.turns)
                    prompt = examples[i % len(examples)]
                    ui.say(f"you> {prompt}")
                    _exchange(ui, chat, prompt)
                else:
                    ui.say(f"unknown command {cmd}; /help lists them")
            except TuituneError as e:
                ui.say(f"error: {e}")
            continue
        try:
            _exchange(ui, chat, line)
        except TuituneError as e:
            ui.say(f"error: {e}")


def _exchange(ui: _PlainUI, chat, message: str) -> None:  # noqa: ANN001
    chat.send(message)
    ui.begin()
    try:
        for side in ("base", "tuned"):
            gen = chat.stream(side)
            try:
                for chunk in gen:
                    ui.chunk(side, chunk)
            except KeyboardInterrupt:
                chat.stop()
                for chunk in gen:
                    ui.chunk(side, chunk)
            ui.done(side, chat.replies[side])
    finally:
        ui.end()


class _PlainUI:
    """Plain lines: base first, then tuned, each streamed as it comes."""

    def __init__(self, chat) -> None:  # noqa: ANN001
        import sys

        self.chat = chat
        self.out = sys.stdout
        self.interactive = sys.stdin.isatty()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def ask(self) -> str | None:
        import sys

        if self.interactive:
            return input("you> ")
        line = sys.stdin.readline()
        return line if line else None

    def begin(self) -> None:
        self.started: set[str] = set()

    def chunk(self, side: str, text: str) -> None:
        if side not in self.started:
            self.started.add(side)
            self.out.write(f"{side}: ")
        self.out.write(text)
        self.out.flush()

    def done(self, side: str, reply) -> None:  # noqa: ANN001
        if side not in self.started:
            self.out.write(f"{side}: ")
        self.out.write(
            f"\n  [{reply.new_tokens} tokens, {reply.tokens_per_second:.1f} tok/s"
            + (", stopped" if reply.stopped else "")
            + "]\n"
        )
        self.out.flush()

    def end(self) -> None:
        pass


class _RichUI(_PlainUI):
    """Two panels side by side, filled live (base first, then tuned)."""

    def __init__(self, chat) -> None:  # noqa: ANN001
        super().__init__(chat)
        from rich.console import Console

        self.console = Console()
        self.live = None
        self.text = {"base": "", "tuned": ""}
        self.footer = {"base": "", "tuned": ""}

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def ask(self) -> str | None:
        return self.console.input("[bold]you>[/bold] ")

    def _render(self):  # noqa: ANN202
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        panels = []
        for side, style in (("base", "yellow"), ("tuned", "green")):
            title = "base (adapter off)" if side == "base" else "tuned"
            panels.append(
                Panel(
                    Text(self.text[side] or "..."),
                    title=title,
                    subtitle=self.footer[side] or None,
                    border_style=style,
                )
            )
        grid.add_row(*panels)
        return grid

    def begin(self) -> None:
        from rich.live import Live

        self.text = {"base": "", "tuned": ""}
        self.footer = {"base": "", "tuned": ""}
        self.live = Live(self._render(), console=self.console, refresh_per_second=12)
        self.live.start()

    def chunk(self, side: str, text: str) -> None:
        self.text[side] += text
        self.live.update(self._render())

    def done(self, side: str, reply) -> None:  # noqa: ANN001
        self.text[side] = reply.text
        self.footer[side] = f"{reply.new_tokens} tok, {reply.tokens_per_second:.1f} tok/s" + (
            ", stopped" if reply.stopped else ""
        )
        self.live.update(self._render())

    def end(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
