"""F1 / ``?``: help for the screen and the focused field, and the keys that work there.

The screen texts carry the seed guide's advice for that step; a field's text is its own help
(``TrainSpec.help`` on Configure, the question's reason on Decide) plus the guide's words on
it where the guide has some. The keys are read from the screen's active bindings, so a key
remapped in the config file shows as remapped.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from tuitune.tui.steps import TITLES

# What each step is for, with the seed guide's advice for it (fine-tuning-start-here).
STEP_HELP = {
    "start": "A new session comes pre-filled with the quickstart (JSON extraction on the "
    "embedded SmolLM2-135M): Enter through every step trains and evaluates it. Resume opens "
    "a saved session at Decide; Attach follows a training run that is (or was) going.",
    "decide": "The seed guide's tree, asked in order; the first yes decides. Prompt "
    "engineering first, RAG for knowledge that changes, fine-tuning for style, format or "
    "behaviour at scale. Red flags are the guide's 'don't fine-tune yet': any of them turns "
    "a fine-tuning verdict into 'not yet'. Next goes on against the verdict on a second "
    "press, and the session records it. The example counts follow what the Data step "
    "measures.",
    "hardware": "What this machine has and what fits. Rule of thumb from the guide: weights "
    "take parameters x bytes per parameter (fp32 4, bf16 2, 4-bit 0.5); training adds the "
    "gradients and about 2x the trainable parameters for Adam, plus activations that grow "
    "with batch x sequence. Out of memory? In order: smaller batch with more accumulation, "
    "gradient checkpointing, QLoRA, shorter sequences, flash attention, bf16, lower LoRA "
    "rank, paged 8-bit AdamW. On a CPU the limit is time before memory.",
    "model": "The base model: 'default' (embedded, offline), a local folder, or a Hugging "
    "Face id from the local cache (or the hub where reachable). The guide: 1B-3B is fast and "
    "cheap to fine-tune, 7B-9B the sweet spot on one consumer GPU, 13B-14B needs QLoRA. "
    "Start from an instruct model for chat data; SFT before DPO.",
    "data": "The guide's data rules: start with 500-2000 high-quality examples, review 50-100 "
    "by hand, keep one response format, no PII, no scraped markup or duplicates, hold out "
    "10-20% for validation. Fewer than 100 examples is a red flag.",
    "template": "One example exactly as the trainer sees it through the model's own chat "
    "template. Trained tokens are highlighted, prompt tokens masked (-100): the guide says "
    "train on the response only, and the EOS token must be trained or the model never "
    "learns to stop.",
    "configure": "The plan: method and hyperparameters with their reasons. The guide's safe "
    "start for LoRA/QLoRA: lr 2e-4, 2-3 epochs, batch 2 x accumulation 8, cosine, warmup "
    "5%, weight decay 0.01; full SFT wants ~1e-5. DPO comes after SFT, on top of its "
    "adapter, at a much lower lr with beta ~0.1.",
    "train": "The run lives in its own process: closing the app or losing SSH leaves it "
    "going (d detaches, `tuitune attach RUN` comes back). Watch training AND validation "
    "loss: validation rising while training falls is overfitting.",
    "evaluate": "Before and after on held-out prompts, with 95% intervals: a change whose "
    "interval spans zero is not evidence. Read the generations yourself, as the guide says; "
    "the forgetting check compares general-text perplexity. t chats with both models.",
    "chat": "Base and tuned model answer the same message, side by side.",
}

# The guide's words on single fields, added to the field's own help.
FIELD_GUIDE = {
    "method": "SFT (full, lora, qlora) teaches the task; DPO aligns an SFT model with "
    "preferences and should start from an SFT adapter (the guide: always SFT before DPO).",
    "learning_rate": "Guide: 2e-4 for LoRA/QLoRA (higher than full fine-tuning is fine), "
    "~1e-5 for full SFT, 5e-6 to 5e-7 for DPO.",
    "num_train_epochs": "Guide: 2-3; rarely more than 3 (more overfits small data).",
    "per_device_train_batch_size": "Guide: start at 2 and raise it if memory allows.",
    "gradient_accumulation_steps": "Effective batch = micro-batch x accumulation (guide: 16).",
    "max_length": "Guide: match it to your data; longer costs memory (activations grow with it).",
    "lora_r": "Guide: 8-64; higher is more expressive and costs more memory.",
    "lora_alpha": "Guide: r or 2r.",
    "lora_dropout": "Guide: 0.05-0.1.",
    "lora_target_modules": "Guide: attention q, k, v, o at least; all-linear also adapts the MLP.",
    "gradient_checkpointing": "Guide: ~40% less activation memory for ~20% more compute.",
    "completion_only_loss": "Guide: labels -100 on prompt tokens, train on the response.",
    "warmup_ratio": "Guide: 5%.",
    "weight_decay": "Guide: 0.01.",
    "beta": "DPO's KL strength: lower lets the policy drift further from the reference "
    "(0.1 is TRL's default).",
    "init_adapter": "DPO starts from the SFT adapter of an earlier run (the guide's SFT -> "
    "DPO pipeline).",
}


def field_help(widget: Widget | None) -> tuple[str, str] | None:
    """(title, text) for the focused widget, when it is a field with its own help."""
    if widget is None:
        return None
    wid = widget.id or ""
    if wid.startswith("f-"):
        name = wid[2:]
        from tuitune.core.spec import TrainSpec

        try:
            own = TrainSpec.help(name)
        except KeyError:
            own = ""
        guide = FIELD_GUIDE.get(name, "")
        return name, " ".join(x for x in (own, guide) if x)
    if wid[:2] in ("q-", "g-", "r-"):
        from tuitune.core.decide import decision

        key = wid[2:]
        for q in decision.QUESTIONS:
            if q.key == key:
                return (
                    q.text,
                    f"Yes means: {decision.APPROACHES.get(q.yes_means, 'go on')}. {q.why}.",
                )
        for f in (*decision.GREEN_FLAGS, *decision.RED_FLAGS):
            if f.key == key:
                kind = "Red flag" if wid.startswith("r-") else "Green flag"
                return f.text, f"{kind} from the guide. {f.why}".strip()
    tooltip = widget.tooltip
    if tooltip:
        return wid or type(widget).__name__, str(tooltip)
    return None


class HelpScreen(ModalScreen[None]):
    """The screen's advice, the focused field's help and the keys, over the current step."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape,f1,question_mark,q", "close", "Close help", id="close-help"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: round $primary; padding: 0 1;
        background: $surface;
    }
    """

    def __init__(self, step: str, focused: Widget | None, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.step = step
        self.focused_help = field_help(focused)
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.text(), id="help-text")

    def text(self) -> Text:
        t = Text()
        t.append(f"{TITLES.get(self.step, self.step.title())}\n", style="bold underline")
        t.append(STEP_HELP.get(self.step, "") + "\n")
        if self.focused_help:
            title, body = self.focused_help
            t.append(f"\nFocused: {title}\n", style="bold")
            t.append(body + "\n")
        t.append("\nKeys here\n", style="bold")
        for key, what in self.keys:
            t.append(f"  {key:<14}", style="bold cyan")
            t.append(f"{what}\n")
        t.append(
            "\nCtrl+P opens the command palette (every action of this screen). Keys are "
            "remapped in the [keymap] table of the config file (`tuitune locate` shows "
            "where). Esc closes this help.",
            style="dim",
        )
        return t

    def action_close(self) -> None:
        self.dismiss(None)
