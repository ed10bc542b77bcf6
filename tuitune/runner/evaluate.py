"""The evaluation child: ``python -m tuitune.runner.evaluate EVALSPEC.json``.

Runs where training runs (GPU when there is one). The base loads exactly as it was trained
(``tuitune.core.hardware.precision``): nf4 with the run's quantization config for QLoRA, otherwise the
dtype the training forward computed in. With a PEFT adapter the base is loaded once and
evaluated with the adapter disabled (``with model.disable_adapter():``), the tuned model with
it enabled, so both sides see identical weights, prompts and greedy decoding. A full-SFT
output directory is a whole second model: the base is scored, freed, and only then the tuned
model loaded, so the two never share the GPU.

Per side: loss and perplexity on the eval set's reference answers (answer tokens only), task
scores of batched, left-padded greedy generations, perplexity on general text and answers to
general questions (the forgetting check); for DPO runs, implicit reward accuracy and margin on
held-out pairs. Before anything else it checks that the adapter changes the model at all.
Progress goes to RUN/events.jsonl as ``progress`` events (phase "eval"); results go to
RUN/eval/results.json atomically.
"""

from __future__ import annotations

import contextlib
import gc
import json
import platform
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuitune.core.atomic import write_json_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.scoring import EvalSpec, finalize
from tuitune.core.evaluation.tasks import get_task, score_all
from tuitune.core.hardware import precision
from tuitune.core.runs.events import EventWriter

GENERAL_MAX_NEW_TOKENS = 48
PROBE_ROWS = 4
IDENTICAL_ATOL = 1e-6


# ---- data ---------------------------------------------------------------------------------


def _read_jsonl(path: str, limit: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not Path(path).is_file():
        raise TuituneError("evaluation file does not exist", path=path, fix="check the path")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TuituneError(f"invalid JSON: {e.msg}", path=path, line=lineno) from None
            if not isinstance(row, dict):
                raise TuituneError("each line must be a JSON object", path=path, line=lineno)
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    return rows


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def split_row(row: dict[str, Any]) -> tuple[Any, str | None, Any]:
    """(prompt, target answer or None, reference) for an eval row in any TRL standard form.

    The prompt is a list of messages (conversational) or a string; a trailing assistant
    message is the target; ``reference`` (for the scorer) defaults to the target.
    """
    reference = row.get("reference")
    target: str | None = None
    if "messages" in row:
        msgs = list(row["messages"])
        if msgs and msgs[-1].get("role") == "assistant":
            target = msgs.pop()["content"]
        prompt: Any = msgs
    elif "prompt" in row:
        prompt = row["prompt"]
        comp = row.get("completion")
        if isinstance(comp, list):
            target = "".join(m.get("content", "") for m in comp)
        elif comp is not None:
            target = str(comp)
    else:
        raise TuituneError("eval row needs 'messages' or 'prompt'")
    if reference is None:
        reference = target
    if target is None and reference is not None:
        target = _as_text(reference)
    return prompt, target, reference


class Renderer:
    """Prompt and answer text through the model's own chat template."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def prompt(self, prompt: Any) -> str:
        if isinstance(prompt, list):
            if self.chat:
                return self.tok.apply_chat_template(
                    prompt, tokenize=False, add_generation_prompt=True
                )
            return "\n".join(m["content"] for m in prompt) + "\n"
        return str(prompt)

    def completion(self, prompt: Any, answer: str) -> str:
        """The answer as the template renders it after the prompt (end-of-turn included)."""
        if isinstance(prompt, list) and self.chat:
            full = self.tok.apply_chat_template(
                [*prompt, {"role": "assistant", "content": answer}], tokenize=False
            )
            head = self.prompt(prompt)
            if full.startswith(head):
                return full[len(head) :]
        return answer + (self.tok.eos_token or "")


# ---- model passes -------------------------------------------------------------------------


def _batches(items: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    for i in range(0, len(items), size):
        yield i, items[i : i + size]


class Evaluator:
    """Holds the model and tokenizer; every pass is batched and reports progress.

    PEFT runs keep one model for both sides. Full SFT keeps at most one model alive: the
    side about to be scored is loaded after the other one is freed (``peak_live_models``
    counts the models really alive, through weak references, at each load).
    """

    def __init__(self, spec: EvalSpec, events: EventWriter) -> None:
        import torch
        from transformers import AutoTokenizer

        self.spec = spec
        self.events = events
        self.torch = torch
        torch.manual_seed(spec.seed)
        cuda = torch.cuda.is_available() and not spec.use_cpu
        self.device = "cuda" if cuda else "cpu"
        self.precision = precision.from_spec(spec, cuda=cuda)  # loads as it trained
        self.batch_size = spec.batch_size or (32 if self.device == "cuda" else 16)
        t0 = time.time()
        self.tok = AutoTokenizer.from_pretrained(
            spec.base_model, trust_remote_code=spec.trust_remote_code
        )
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.load_s = 0.0  # every model load, the tuned model's included
        self._refs: list[weakref.ref[Any]] = []
        self.loads = 0
        self.peak_live_models = 0
        self.model: Any = None  # the base (PEFT-wrapped for adapter runs)
        self.tuned_model: Any = None  # full SFT: a second model, loaded when its turn comes
        self.tuned_dir: Path | None = None
        self.peft = False
        adapter = Path(spec.adapter) if spec.adapter else None
        if adapter is not None:
            if (adapter / "adapter_config.json").is_file():
                self.peft = True
            elif (adapter / "config.json").is_file():
                self.tuned_dir = adapter
            else:
                raise TuituneError(
                    "neither a PEFT adapter nor a model directory",
                    path=adapter,
                    fix="pass RUN/adapter of a finished run",
                )
        self.model = self._load(spec.base_model)
        if self.peft:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(adapter)).eval()
        self.render = Renderer(self.tok)
        self.load_s = time.time() - t0
        self.done = 0
        self.total = 0

    def load_kwargs(self) -> dict[str, Any]:
        """``from_pretrained`` arguments: the training's dtype, its 4-bit config for QLoRA."""
        kw: dict[str, Any] = {"trust_remote_code": self.spec.trust_remote_code}
        kw.update(precision.load_kwargs(self.precision, training=False, cuda=self.device == "cuda"))
        return kw

    def _load(self, path: str | Path) -> Any:
        from transformers import AutoModelForCausalLM

        t0 = time.time()
        kw = self.load_kwargs()
        model = AutoModelForCausalLM.from_pretrained(str(path), **kw)
        if "device_map" not in kw and not self.precision.load_in_4bit:
            model = model.to(self.device)
        model.eval()
        self.load_s += time.time() - t0
        self.loads += 1
        self._refs.append(weakref.ref(model))
        live = sum(1 for r in self._refs if r() is not None)
        self.peak_live_models = max(self.peak_live_models, live)
        return model

    def _free(self, attr: str) -> None:
        setattr(self, attr, None)
        gc.collect()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()

    @property
    def has_tuned(self) -> bool:
        return self.peft or self.tuned_dir is not None

    @contextlib.contextmanager
    def side(self, which: str) -> Iterator[Any]:
        """The model for one side: "before" = base (adapter disabled), "after" = tuned.

        Full SFT: entering "after" frees the base and loads the tuned model; entering
        "before" again frees the tuned model and reloads the base.
        """
        if which == "before":
            if self.peft:
                with self.model.disable_adapter():
                    yield self.model
                return
            if self.model is None:
                self._free("tuned_model")
                self.model = self._load(self.spec.base_model)
            yield self.model
            return
        if self.tuned_dir is None:
            yield self.model
            return
        if self.tuned_model is None:
            self._free("model")
            self.tuned_model = self._load(self.tuned_dir)
        yield self.tuned_model

    def tick(self, what: str, n: int = 1) -> None:
        self.done += n
        self.events.emit("progress", phase="eval", done=self.done, total=self.total, what=what)

    def generate(self, model: Any, prompts: list[Any], max_new_tokens: int, what: str) -> list[str]:
        """Greedy, left-padded, batched; same decoding for both sides."""
        torch = self.torch
        self.tok.padding_side = "left"
        outs: list[str] = []
        eos = [self.tok.eos_token_id] if self.tok.eos_token_id is not None else None
        for _, chunk in _batches(prompts, self.batch_size):
            texts = [self.render.prompt(p) for p in chunk]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tok.pad_token_id,
                    eos_token_id=eos,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            outs += [s.strip() for s in self.tok.batch_decode(new, skip_special_tokens=True)]
            self.tick(what, len(chunk))
        return outs

    def _encode_pairs(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
        """Token ids of prompt + completion, and where the completion starts (truncated from
        the left of the prompt when too long, so the scored answer stays whole)."""
        out = []
        for prompt, completion in pairs:
            p = self.tok(prompt, add_special_tokens=False)["input_ids"] if prompt else []
            c = self.tok(completion, add_special_tokens=False)["input_ids"]
            c = c[: self.spec.max_length]
            p = p[max(0, len(p) - (self.spec.max_length - len(c))) :]
            out.append((p + c, len(p)))
        return out

    def nll(self, model: Any, pairs: list[tuple[str, str]], what: str) -> dict[str, list[float]]:
        """Per-example summed negative log-likelihood of the completion, and its token count."""
        torch = self.torch
        enc = self._encode_pairs(pairs)
        pad = self.tok.pad_token_id
        sums: list[float] = []
        counts: list[int] = []
        for _, chunk in _batches(enc, self.batch_size):
            # Left padding puts every answer at the right edge, so the LM head (the biggest
            # matmul: vocabulary x positions) runs only over the answer positions.
            width = max(len(ids) for ids, _ in chunk)
            keep = max(len(ids) - start for ids, start in chunk) + 1
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for i, (ids, start) in enumerate(chunk):
                off = width - len(ids)
                input_ids[i, off:] = torch.tensor(ids)
                attn[i, off:] = 1
                first = max(start, 1)  # the first token of a row has nothing to predict it
                labels[i, off + first :] = torch.tensor(ids[first:])
            positions = (attn.cumsum(-1) - 1).clamp(min=0)
            inputs = {
                "input_ids": input_ids.to(self.device),
                "attention_mask": attn.to(self.device),
                "position_ids": positions.to(self.device),
            }
            with torch.inference_mode():
                try:
                    logits = model(**inputs, logits_to_keep=min(keep, width)).logits.float()
                except TypeError:  # a model without logits_to_keep: score every position
                    logits = model(**inputs).logits.float()
            labels = labels[:, width - logits.shape[1] :]
            shift_logits = logits[:, :-1]
            shift_labels = labels[:, 1:].to(self.device)
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)),
                shift_labels.reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(shift_labels.shape)
            mask = shift_labels != -100
            sums += (loss * mask).sum(dim=1).tolist()
            counts += mask.sum(dim=1).tolist()
            self.tick(what, len(chunk))
        return {"nll_sum": sums, "tokens": counts}

    def probe_logits(self, model: Any, prompts: list[Any]) -> Any:
        """Logits of one side on the probe batch, kept on the CPU for ``adapter_check``."""
        torch = self.torch
        texts = [self.render.prompt(p) for p in prompts[:PROBE_ROWS]] or ["Hello"]
        self.tok.padding_side = "left"
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        mask = enc["attention_mask"].bool()
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logits = model(**enc).logits.float().cpu()
        return logits, mask, len(texts)

    def adapter_check(self, probes: dict[str, Any]) -> dict[str, Any]:
        """Does the tuned model differ from the base at all? Identical logits on a probe batch
        mean the adapter was not applied (never trained, wrong target modules, not loaded).
        ``probes`` holds ``probe_logits`` of both sides (scored one after the other)."""
        (before, mask, rows), (after, _, _) = probes["before"], probes["after"]
        diff = (after - before).abs()[mask].max().item()
        check: dict[str, Any] = {"max_logit_diff": diff, "probe_rows": rows}
        if self.peft:
            b_norms = [
                p.detach().abs().max().item()
                for n, p in self.model.named_parameters()
                if "lora_B" in n or "lora_embedding_B" in n
            ]
            check["lora_modules"] = len(b_norms)
            check["lora_b_nonzero"] = sum(1 for x in b_norms if x > 0)
        applied = diff > IDENTICAL_ATOL
        check["applied"] = applied
        if not applied:
            why = (
                "its LoRA B matrices are all zero (the adapter was never trained)"
                if self.peft and check.get("lora_b_nonzero") == 0
                else "the adapter was not applied"
            )
            check["message"] = (
                f"the tuned model is identical to the base (max logit difference {diff:.1e}): "
                f"{why}; 'after' figures equal 'before' for that reason"
            )
        return check


def _environment(ev: Evaluator) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "device": ev.device,
        "precision": ev.precision.describe(),
    }
    if ev.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


# ---- main ---------------------------------------------------------------------------------


def evaluate(spec: EvalSpec) -> dict[str, Any]:
    """Everything measured, finalised with bootstrap comparisons; also written to disk."""
    run_dir = Path(spec.run_dir)
    t_start = time.time()
    with EventWriter(run_dir / "events.jsonl") as events:
        events.emit("progress", phase="eval", done=0, total=0, what="loading model")
        # Read and check every input before the (slow) model load: bad data fails fast.
        task = get_task(spec.task) if spec.task else None
        rows = _read_jsonl(spec.eval_file, spec.limit) if spec.eval_file else []
        split = [split_row(r) for r in rows]
        prompts = [p for p, _, _ in split]
        general = _read_jsonl(spec.general_file) if spec.general_file else []
        g_text = [r["text"] for r in general if isinstance(r.get("text"), str)]
        g_qa = [split_row(r) for r in general if "text" not in r]
        pref = _read_jsonl(spec.preference_file, spec.limit) if spec.preference_file else []

        ev = Evaluator(spec, events)
        sides = ["before", "after"] if ev.has_tuned else ["before"]
        loss_pairs = [(ev.render.prompt(p), ev.render.completion(p, t)) for p, t, _ in split if t]

        per_side = (len(prompts) if task else 0) + len(loss_pairs) + len(g_text) + len(g_qa)
        ev.total = per_side * len(sides) + 2 * len(pref) * (2 if ev.peft else 0)

        raw: dict[str, Any] = {
            "task": spec.task,
            "headline": task.headline if task else "eval_loss",
            "metric_descriptions": {"task": task.description} if task else {},
            "model": spec.base_model,
            "adapter": spec.adapter,
            "seed": spec.seed,
            "n_eval": len(rows),
            "eval_file": spec.eval_file,
            "general_file": spec.general_file,
            "decoding": {
                "do_sample": False,
                "max_new_tokens": spec.max_new_tokens,
                "general_max_new_tokens": GENERAL_MAX_NEW_TOKENS,
                "batch_size": ev.batch_size,
                "padding_side": "left",
            },
            "warnings": [],
        }
        t_eval, load_before = time.time(), ev.load_s
        gens: dict[str, list[str]] = {}
        scores: dict[str, dict[str, list[float]]] = {}
        loss: dict[str, Any] = {}
        gen_general: dict[str, list[str]] = {}
        general_out: dict[str, Any] = {"n_text": len(g_text), "n_questions": len(g_qa)}
        probes: dict[str, Any] = {}
        probe_prompts = prompts or [q for q, _, _ in g_qa]

        def score_side(which: str) -> None:
            # A function of its own, so no reference to a side's model outlives its turn
            # (full SFT frees the base before the tuned model loads).
            with ev.side(which) as model:
                if ev.has_tuned:
                    probes[which] = ev.probe_logits(model, probe_prompts)
                if loss_pairs:
                    loss[which] = ev.nll(model, loss_pairs, f"{which}: eval loss")
                if task and prompts:
                    gens[which] = ev.generate(
                        model, prompts, spec.max_new_tokens, f"{which}: generating"
                    )
                    for metric, values in score_all(
                        task, gens[which], [r for _, _, r in split]
                    ).items():
                        scores.setdefault(metric, {})[which] = values
                if g_text:
                    general_out[f"text_{which}"] = ev.nll(
                        model, [("", t) for t in g_text], f"{which}: general text"
                    )
                if g_qa:
                    gen_general[which] = ev.generate(
                        model,
                        [q for q, _, _ in g_qa],
                        GENERAL_MAX_NEW_TOKENS,
                        f"{which}: general questions",
                    )
                    general_out[f"qa_{which}"] = score_all(
                        get_task("contains"), gen_general[which], [r for _, _, r in g_qa]
                    )["contains"]

        for which in sides:
            score_side(which)
        if ev.has_tuned:
            raw["adapter_check"] = ev.adapter_check(probes)
        raw["loading"] = {
            "precision": ev.precision.to_dict(),
            "dtype": ev.precision.inference,
            "load_in_4bit": ev.precision.load_in_4bit,
            "model_loads": ev.loads,
            "peak_live_models": ev.peak_live_models,
            "sequential": ev.tuned_dir is not None,
        }
        if pref and ev.peft:
            raw["preference"] = _preference(ev, pref)
        raw["task_scores"] = scores
        raw["loss"] = loss
        raw["general"] = general_out
        raw["generations"] = [
            {
                "prompt": _prompt_text(p),
                "reference": r,
                **{w: gens[w][i] for w in gens},
            }
            for i, (p, _, r) in enumerate(split)
            if gens
        ]
        raw["general_generations"] = [
            {
                "prompt": _prompt_text(q),
                "reference": r,
                **{w: gen_general[w][i] for w in gen_general},
            }
            for i, (q, _, r) in enumerate(g_qa)
        ]
        if gens.get("before") is not None and gens.get("before") == gens.get("after"):
            raw["warnings"].append(
                f"all {len(prompts)} tuned generations are identical to the base's"
            )
        raw["timing"] = {
            "load_s": round(ev.load_s, 2),
            "eval_s": round(time.time() - t_eval - (ev.load_s - load_before), 2),
            "total_s": round(time.time() - t_start, 2),
        }
        raw["environment"] = _environment(ev)
        results = finalize(raw, seed=spec.seed)
        write_json_atomic(run_dir / "eval" / "results.json", results)
        events.emit("progress", phase="eval", done=ev.total, total=ev.total, what="done")
    return results


def _preference(ev: Evaluator, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """DPO's implicit reward, beta * (log pi(y|x) - log ref(y|x)), on held-out pairs."""
    chosen, rejected = [], []
    for row in pairs:
        prompt = row.get("prompt", "")
        c, r = row.get("chosen"), row.get("rejected")
        c = "".join(m["content"] for m in c) if isinstance(c, list) else str(c)
        r = "".join(m["content"] for m in r) if isinstance(r, list) else str(r)
        head = ev.render.prompt(prompt)
        chosen.append((head, ev.render.completion(prompt, c)))
        rejected.append((head, ev.render.completion(prompt, r)))
    logp: dict[str, dict[str, list[float]]] = {}
    for which in ("before", "after"):
        with ev.side(which) as model:
            logp[which] = {
                "chosen": [-s for s in ev.nll(model, chosen, f"{which}: pairs")["nll_sum"]],
                "rejected": [-s for s in ev.nll(model, rejected, f"{which}: pairs")["nll_sum"]],
            }
    beta = ev.spec.beta
    rc = [beta * (a - b) for a, b in zip(logp["after"]["chosen"], logp["before"]["chosen"])]
    rr = [beta * (a - b) for a, b in zip(logp["after"]["rejected"], logp["before"]["rejected"])]
    margins = [c - r for c, r in zip(rc, rr)]
    return {
        "n": len(pairs),
        "beta": beta,
        "margins": margins,
        "reward_accuracy": sum(m > 0 for m in margins) / len(margins),
        "reward_margin": sum(margins) / len(margins),
    }


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"]
        return users[-1] if users else ""
    return str(prompt)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tuitune.runner.evaluate EVALSPEC.json", file=sys.stderr)
        return 2
    try:
        results = evaluate(EvalSpec.load(argv[0]))
    except TuituneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    head = next((c for c in results["comparisons"] if c["metric"] == results["headline"]), None)
    if head:
        print(f"{head['metric']}: {head['before']} -> {head['after']} (n={head['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
