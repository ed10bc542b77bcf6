"""The playground: the tuned model and its base answer the same messages, side by side.

One model load serves both sides for adapter runs: the base is the same weights with the
adapter disabled (PEFT's ``disable_adapter()``), so the comparison costs no extra memory and
cannot drift to another checkpoint. The base loads exactly as the run trained it
(``tuitune.core.hardware.precision``): nf4 with the same quantization config for QLoRA, the training
dtype otherwise. Full fine-tunes load the base and the tuned model; on a GPU where the two do
not fit together, the side not answering waits in CPU memory and the two swap per answer.
Both sides use the run's own tokenizer and chat template and the same decoding settings; with
sampling, both sides start from the same seed. Each side keeps its own multi-turn history (the
user's messages are shared, each side continues its own answers). Text is streamed token by
token with transformers' ``TextIteratorStreamer`` while ``generate`` runs in a thread, so a
caller can iterate the chunks (or stop them) without blocking its own loop.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.scoring import EvalSpec
from tuitune.core.hardware import precision
from tuitune.core.runs.rundir import RunDir
from tuitune.core.runs.session_of import run_session
from tuitune.core.spec import TrainSpec

SIDES = ("base", "tuned")


@dataclass(frozen=True)
class Decoding:
    """Decoding settings, identical for both sides. Greedy by default (reproducible)."""

    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    seed: int = 0

    def generate_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": not self.greedy}
        if self.greedy:
            # Explicit neutral values: a model's generation_config may carry sampling defaults.
            kw.update(temperature=None, top_p=None, top_k=None)
        else:
            kw.update(temperature=self.temperature, top_p=self.top_p, top_k=None)
        if self.repetition_penalty != 1.0:
            kw["repetition_penalty"] = self.repetition_penalty
        return kw

    def describe(self) -> str:
        if self.greedy:
            how = "greedy"
        else:
            how = f"sampling, temperature {self.temperature:g}, top_p {self.top_p:g}"
        extra = f", repetition_penalty {self.repetition_penalty:g}"
        return f"{how}, max_new_tokens {self.max_new_tokens}, seed {self.seed}" + (
            extra if self.repetition_penalty != 1.0 else ""
        )

    def with_setting(self, name: str, raw: str) -> Decoding:
        """A copy with one setting changed from text (``/set temperature 0.5``)."""
        known = {f.name: f for f in fields(self)}
        if name not in known:
            raise TuituneError(
                f"unknown decoding setting {name!r}", fix=f"use one of {', '.join(known)}"
            )
        current = getattr(self, name)
        try:
            if isinstance(current, bool):
                low = raw.strip().lower()
                if low not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
                    raise ValueError(raw)
                value: Any = low in ("true", "on", "yes", "1")
            elif isinstance(current, int):
                value = int(raw)
            else:
                value = float(raw)
        except ValueError:
            raise TuituneError(
                f"bad value {raw!r} for {name}", fix=f"give a {type(current).__name__}"
            ) from None
        if name == "temperature" and value <= 0:
            raise TuituneError("temperature must be above 0", fix="or set greedy on")
        if name == "top_p" and not 0 < value <= 1:
            raise TuituneError("top_p must be in (0, 1]")
        if name == "max_new_tokens" and not 1 <= value <= 8192:
            raise TuituneError("max_new_tokens must be between 1 and 8192")
        changes: dict[str, Any] = {name: value}
        if name in ("temperature", "top_p"):
            changes["greedy"] = False  # setting a sampling knob means sampling
        return replace(self, **changes)


@dataclass(frozen=True)
class ChatTarget:
    """What to load for a run: base weights plus a PEFT adapter, or two full models."""

    run_id: str
    base_model: Path
    adapter: Path | None  # PEFT adapter directory
    tuned_model: Path | None  # full fine-tune: a whole model
    tokenizer_dir: Path
    trust_remote_code: bool = False
    use_cpu: bool = False
    method: str = "lora"
    # how the run trained: the base loads the same way (tuitune.core.hardware.precision)
    bf16: bool = False
    fp16: bool = False
    load_in_4bit: bool = False

    def precision(self, *, cuda: bool) -> precision.Precision:
        return precision.from_spec(self, cuda=cuda)


def chat_target(run: RunDir) -> ChatTarget:
    """Read the run's spec (``TrainSpec.load``) and find its result; one-line error when it
    cannot chat."""
    if not run.spec.is_file():
        raise TuituneError("this run has no spec.json", path=run.spec)
    spec = TrainSpec.load(run.spec)
    if not run.adapter.is_dir():
        raise TuituneError(
            "this run has no saved result yet",
            path=run.adapter,
            fix="finish the run first (tuitune resume RUN), then chat",
        )
    if spec.method == "reward":
        raise TuituneError(
            "a reward model scores answers, it does not chat",
            fix="chat with the policy run instead",
        )
    is_adapter = (run.adapter / "adapter_config.json").is_file()
    has_tok = (run.adapter / "tokenizer_config.json").is_file()
    return ChatTarget(
        run_id=run.id,
        base_model=Path(spec.model),
        adapter=run.adapter if is_adapter else None,
        tuned_model=None if is_adapter else run.adapter,
        tokenizer_dir=run.adapter if has_tok else Path(spec.model),
        trust_remote_code=spec.trust_remote_code,
        use_cpu=spec.use_cpu,
        method=spec.method,
        bf16=spec.bf16,
        fp16=spec.fp16,
        load_in_4bit=spec.load_in_4bit,
    )


def _read_jsonl(path: Path, limit: int = 2000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if len(out) >= limit:
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict):
                    out.append(row)
    except OSError:
        return []
    return out


def _messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = row.get("messages") or row.get("prompt")
    return msgs if isinstance(msgs, list) else []


def training_system_prompt(run: RunDir) -> str:
    """The system prompt most training rows used (empty when under half had one).

    A model tuned with a fixed system prompt is meant to be asked with it; the chat starts
    with it so the playground asks the way training (and the evaluation) did.
    """
    rows = _read_jsonl(run.data / "train.jsonl")
    systems = Counter(
        m.get("content", "")
        for r in rows
        for m in _messages(r)[:1]
        if m.get("role") == "system" and isinstance(m.get("content"), str)
    )
    if not systems:
        return ""
    text, count = systems.most_common(1)[0]
    return text if count * 2 >= len(rows) else ""


def example_prompts(run: RunDir, eval_file: str | Path | None = None, n: int = 20) -> list[str]:
    """Held-out user messages to try (the evaluation file, else the run's validation split)."""
    candidates = [Path(eval_file)] if eval_file else []
    if not candidates:
        spec_eval: str | Path | None = None
        with contextlib.suppress(TuituneError):  # the run's own session, as attach restores it
            session = run_session(run)
            if session.evaluation.eval_file:
                spec_eval = session.resolve(session.evaluation.eval_file)
        evalspec = run.eval / "evalspec.json"
        if evalspec.is_file():
            with contextlib.suppress(TuituneError):
                spec_eval = EvalSpec.load(evalspec).eval_file or spec_eval
        if spec_eval and Path(spec_eval).is_absolute():
            candidates.append(Path(spec_eval))
    candidates.append(run.data / "eval.jsonl")
    for path in candidates:
        out = []
        for row in _read_jsonl(path, limit=n * 4):
            users = [m for m in _messages(row) if m.get("role") == "user"]
            if users and isinstance(users[-1].get("content"), str):
                out.append(users[-1]["content"])
            elif isinstance(row.get("prompt"), str):
                out.append(row["prompt"])
        if out:
            return out[:n]
    return []


@dataclass
class Reply:
    """One side's answer to the latest message, with its cost."""

    side: str
    text: str = ""
    new_tokens: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ChatState:
    """The conversation: the shared system prompt and user turns, and each side's answers."""

    system: str = ""
    turns: list[dict[str, str]] = field(default_factory=list)  # {"user", "base", "tuned"}

    def messages(self, side: str) -> list[dict[str, str]]:
        """The chat as ``side`` saw it: its own earlier answers, then the pending message."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        for t in self.turns:
            out.append({"role": "user", "content": t["user"]})
            if t.get(side) is not None:
                out.append({"role": "assistant", "content": t[side]})
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChatSession:
    """Side-by-side chat with a run: ``load()`` once, then ``send()`` and ``stream()``.

    ``stream(side)`` yields text chunks as they are generated and records the answer in the
    history when it ends; call it for "base" and then "tuned" after each ``send``. Use it from
    one thread at a time (the adapter switch is model-wide); ``stop()`` may be called from
    any thread.
    """

    def __init__(self, target: ChatTarget, decoding: Decoding | None = None, system: str = ""):
        self.target = target
        self.decoding = decoding or Decoding()
        self.state = ChatState(system=system)
        self.model: Any = None
        self.base_model: Any = None  # full fine-tunes only
        self.tokenizer: Any = None
        self.device = "cpu"
        self.precision: precision.Precision | None = None
        self.swap = False  # full SFT on a GPU too small for both: the idle side waits in RAM
        self.load_seconds = 0.0
        self.replies: dict[str, Reply] = {}
        self._stop = threading.Event()

    # -- loading ----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self) -> None:
        """Load the tokenizer and model(s). Slow (seconds); call it off any UI thread."""
        if self.loaded:
            return
        import torch
        from transformers import AutoTokenizer

        t0 = time.perf_counter()
        t = self.target
        cuda = torch.cuda.is_available() and not t.use_cpu
        self.device = "cuda" if cuda else "cpu"
        self.precision = t.precision(cuda=cuda)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(t.tokenizer_dir), trust_remote_code=t.trust_remote_code
            )
        except (OSError, ValueError) as e:
            raise TuituneError(f"cannot load the tokenizer: {e}", path=t.tokenizer_dir) from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise TuituneError(
                "this model has no chat template, so it cannot chat",
                path=t.tokenizer_dir,
                fix="train with a chat template (the wizard's Template step adds one)",
            )

        base = self._load_model(t.base_model)
        if t.adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(base, str(t.adapter)).eval()
        else:
            self.base_model = base
            tuned = t.tuned_model or t.base_model
            self.swap = cuda and not self._fits_beside(base)
            if self.swap:
                base.to("cpu")
                gc.collect()
                torch.cuda.empty_cache()
            self.model = self._load_model(tuned)
        self.load_seconds = time.perf_counter() - t0

    def load_kwargs(self) -> dict[str, Any]:
        """``from_pretrained`` arguments under the run's precision (4-bit for QLoRA)."""
        assert self.precision is not None
        kw: dict[str, Any] = {"trust_remote_code": self.target.trust_remote_code}
        kw.update(precision.load_kwargs(self.precision, training=False, cuda=self.device == "cuda"))
        return kw

    def _load_model(self, path: Path) -> Any:
        from transformers import AutoModelForCausalLM

        kw = self.load_kwargs()
        try:
            m = AutoModelForCausalLM.from_pretrained(str(path), **kw)
        except (OSError, ValueError) as e:
            raise TuituneError(f"cannot load the model: {e}", path=path) from None
        if "device_map" not in kw and "quantization_config" not in kw:
            m = m.to(self.device)
        return m.eval()

    def _fits_beside(self, loaded: Any) -> bool:
        """Does a second model as big as ``loaded`` fit in the GPU's free memory (10% spare)?"""
        import torch

        need = sum(p.numel() * p.element_size() for p in loaded.parameters())
        free, _total = torch.cuda.mem_get_info()
        return need * 1.1 <= free

    def _on_device(self, side: str) -> Any:
        """Full SFT: the model answering for ``side``, moved to the GPU if it was waiting in
        RAM (and the other one moved out first)."""
        active = self.base_model if side == "base" else self.model
        if self.swap:
            idle = self.model if side == "base" else self.base_model
            if next(idle.parameters()).device.type != "cpu":
                idle.to("cpu")
                gc.collect()
                import torch

                torch.cuda.empty_cache()
            active.to(self.device)
        return active

    def describe_load(self) -> str:
        """'loaded in 2.1 s on cuda (bf16 autocast, weights nf4 (compute bf16), ...); one
        model, base = adapter disabled': what the front ends print after ``load``."""
        how = f" ({self.precision.describe()})" if self.precision else ""
        if self.target.adapter is not None:
            sides = "one model, base = adapter disabled"
        elif self.swap:
            sides = "base and tuned, swapped between GPU and RAM (they do not fit together)"
        else:
            sides = "base and tuned"
        return f"loaded in {self.load_seconds:.1f} s on {self.device}{how}; {sides}"

    # -- conversation ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.state.turns.clear()
        self.replies.clear()

    def set_system(self, text: str) -> None:
        self.state.system = text

    def send(self, message: str) -> None:
        """Add the user's message; both sides answer it with ``stream``."""
        message = message.strip()
        if not message:
            raise TuituneError("empty message")
        self.state.turns.append({"user": message, "base": None, "tuned": None})  # type: ignore[dict-item]
        self.replies.clear()

    def stop(self) -> None:
        """Ask the running generation to end after its current token (thread-safe)."""
        self._stop.set()

    def prompt_ids(self, side: str) -> Any:
        """The token ids of the chat as ``side`` sees it, with the generation prompt."""
        enc = self.tokenizer.apply_chat_template(
            self.state.messages(side),
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def stream(self, side: str) -> Iterator[str]:
        """Generate ``side``'s answer to the latest message, yielding text as it comes."""
        if side not in SIDES:
            raise TuituneError(f"unknown side {side!r}", fix="base or tuned")
        if not self.state.turns:
            raise TuituneError("nothing to answer yet", fix="send a message first")
        self.load()
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = self._stop
        stop.clear()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        ids, mask = self.prompt_ids(side)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}
        kwargs = dict(
            input_ids=ids,
            attention_mask=mask,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Stop()]),
            pad_token_id=self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id,
            **self.decoding.generate_kwargs(),
        )

        def work() -> None:
            try:
                torch.manual_seed(self.decoding.seed)
                with torch.inference_mode():
                    result["out"] = self._generate(side, kwargs)
            except BaseException as e:  # surfaced to the caller below
                result["error"] = e
                streamer.end()

        reply = Reply(side)
        self.replies[side] = reply
        t0 = time.perf_counter()
        thread = threading.Thread(target=work, name=f"tuitune-chat-{side}", daemon=True)
        thread.start()
        for chunk in streamer:
            if chunk:
                reply.text += chunk
                reply.seconds = time.perf_counter() - t0
                yield chunk
        thread.join()
        reply.seconds = time.perf_counter() - t0
        if "error" in result:
            err = result["error"]
            raise TuituneError(f"generation failed: {err}") from err
        out = result["out"]
        new = out[0, ids.shape[1] :]
        reply.new_tokens = int(new.shape[0])
        reply.text = self.tokenizer.decode(new, skip_special_tokens=True)
        reply.stopped = stop.is_set()
        self.state.turns[-1][side] = reply.text

    def _generate(self, side: str, kwargs: dict[str, Any]) -> Any:
        if self.target.adapter is None:
            return self._on_device(side).generate(**kwargs)
        if side == "base":
            with self.model.disable_adapter():
                return self.model.generate(**kwargs)
        return self.model.generate(**kwargs)

    def answer(self, side: str) -> Reply:
        """``stream`` without the chunks: the whole answer at once."""
        for _ in self.stream(side):
            pass
        return self.replies[side]


def quiet_libraries() -> None:
    """Silence load-time chatter (weight-loading bars, deprecation and bitsandbytes notices)
    that would otherwise land in the middle of an interactive chat."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def open_chat(run: RunDir, decoding: Decoding | None = None) -> ChatSession:
    """A chat session for ``run`` (not yet loaded), starting from the training system prompt."""
    return ChatSession(chat_target(run), decoding, system=training_system_prompt(run))
