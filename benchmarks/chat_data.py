"""Random-weight models and synthetic chat data with exact token lengths, for the benchmarks.

Speed and memory do not depend on the weights, so the benchmarks build each architecture from
its published config with random weights (``AutoModelForCausalLM.from_config``) and pair it
with a byte-level tokenizer without merges: every letter of the synthetic text is one token,
so a turn of N letters is exactly N tokens and lengths, padding and packing are known exactly.
Byte-level without merges survives the tokenizer classes transformers forces for some model
types (Qwen2's regex and byte-level pipeline). The chat template marks the assistant turn with
``{% generation %}`` so only answer tokens are trained, as tuitune does.

Used by ``benchmarks/throughput.py`` and ``benchmarks/gpu_proof.py``; nothing here needs a GPU
(``build_model(..., device="cuda")`` builds on one when asked).
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>"]
PAD_ID, EOS_ID = 0, 2
TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{{ '<|im_start|><|assistant|>' }}{% generation %}{{ m['content'] + '<|im_end|>' }}"
    "{% endgeneration %}"
    "{% else %}{{ '<|im_start|><|' + m['role'] + '|>' + m['content'] + '<|im_end|>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|><|assistant|>' }}{% endif %}"
)
# Tokens the template adds around one user + assistant exchange.
TEMPLATE_TOKENS = 6
# The synthetic language: one token per letter.
LETTERS = string.ascii_letters
COMPLETE = ".complete"


def build_tokenizer(vocab_size: int, max_length: int) -> Any:
    """A fast byte-level tokenizer without merges (one token per letter), ChatML-like
    specials and the template above. ``vocab_size`` must hold the 256 byte symbols."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < len(SPECIALS) + len(alphabet):
        raise ValueError(f"vocab_size {vocab_size} cannot hold the byte-level alphabet")
    vocab = {t: i for i, t in enumerate(SPECIALS + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        additional_special_tokens=SPECIALS[1:2] + SPECIALS[3:],
        model_max_length=max_length,
    )
    fast.chat_template = TEMPLATE
    return fast


def build_model(
    config: dict[str, Any],
    directory: Path,
    *,
    device: str = "cpu",
    dtype: str = "bf16",
    max_length: int = 4096,
    seed: int = 0,
) -> Path:
    """Random weights for ``config`` (a config.json dict) saved like a hub model, with the
    word-level tokenizer. Idempotent: a directory marked complete is reused."""
    directory = Path(directory)
    if (directory / COMPLETE).exists():
        return directory
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(config)
    cfg.setdefault("max_position_embeddings", max(4096, max_length))
    cfg["max_position_embeddings"] = max(cfg["max_position_embeddings"], max_length)
    model_type = cfg.pop("model_type")
    tok = build_tokenizer(int(cfg["vocab_size"]), max_length)
    conf = AutoConfig.for_model(
        model_type, **cfg, pad_token_id=PAD_ID, eos_token_id=EOS_ID, bos_token_id=None
    )
    torch.manual_seed(seed)
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(conf, dtype=torch_dtype)
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.pad_token_id = PAD_ID
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    (directory / COMPLETE).write_text("random weights from the published config\n")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return directory


def config_only(config: dict[str, Any], directory: Path) -> Path:
    """A model folder holding only ``config.json``: enough for the estimator and the plan,
    which read the architecture and never the weights."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    return directory


def _text(rng: random.Random, k: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(max(1, k)))


def chat_rows(
    n: int, lengths: tuple[int, int], *, seed: int, vocab: int = 0
) -> tuple[list[dict[str, Any]], list[int]]:
    """``messages`` rows whose rendered length is uniform in ``lengths`` tokens (inclusive).

    The answer is the prompt's letters through a fixed permutation, so the task is learnable
    and an eval loss means something. (``vocab`` is accepted for symmetry; every model here
    holds the letters.)
    """
    rng = random.Random(seed)
    perm = list(LETTERS)
    random.Random(1234).shuffle(perm)
    table = str.maketrans(LETTERS, "".join(perm))
    rows, out_lengths = [], []
    for _ in range(n):
        total = rng.randint(*lengths)
        body = max(2, total - TEMPLATE_TOKENS)
        q = max(1, body // 2)
        a = max(1, body - q)
        prompt = _text(rng, q)
        answer = (prompt * (a // q + 1))[:a].translate(table)
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
        out_lengths.append(q + a + TEMPLATE_TOKENS)
    return rows, out_lengths


def preference_rows(n: int, length: int, *, seed: int, vocab: int = 0) -> list[dict[str, Any]]:
    """Conversational preference pairs: prompt + chosen (and prompt + rejected) of about
    ``length`` tokens each, as DPO concatenates them."""
    rng = random.Random(seed)
    rows = []
    q = max(1, (length - TEMPLATE_TOKENS) // 2)
    a = max(1, length - TEMPLATE_TOKENS - q)
    for _ in range(n):
        rows.append(
            {
                "prompt": [{"role": "user", "content": _text(rng, q)}],
                "chosen": [{"role": "assistant", "content": _text(rng, a)}],
                "rejected": [{"role": "assistant", "content": _text(rng, a)}],
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path
