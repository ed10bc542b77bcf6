"""Shared fixtures: an isolated TUITUNE_HOME per test, a tiny random chat model built once
per session, and the embedded default model converted once per machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runner_kit import people, write_rows

CHATML_WITH_GENERATION = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    'Return JSON: {"name": "Ada", "city": "London", "age": 36}',
    "user assistant system hello world answer question extract fields",
    '0123456789 {}[]:," abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ',
] * 20


@pytest.fixture(autouse=True)
def tuitune_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data/cache root; the default model cache is shared."""
    home = tmp_path / "tuitune-home"
    monkeypatch.setenv("TUITUNE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    shared = _default_model_cache()
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "models").symlink_to(shared, target_is_directory=True)
    return home


def _default_model_cache() -> Path:
    root = Path(os.environ.get("TUITUNE_TEST_CACHE", Path.home() / ".cache" / "tuitune-tests"))
    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    return models


def build_tiny_model(directory: Path, *, generation_markers: bool = True) -> Path:
    """A random 2-layer Llama with a byte-level BPE and a ChatML template, saved to disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    template = CHATML_WITH_GENERATION
    if not generation_markers:
        template = template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        model_max_length=512,
    )
    fast.chat_template = template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny random chat model whose template has {% generation %} markers."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model with a ChatML template without generation markers."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-plain"), generation_markers=False)


@pytest.fixture(scope="session")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded SmolLM2-135M-Instruct, converted once per machine (about 25 s)."""
    from tuitune.core.models import resolve as models

    home = tmp_path_factory.mktemp("home-default")
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(_default_model_cache(), target_is_directory=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("TUITUNE_HOME", str(home))
    try:
        return models.ensure_default_model()
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def one_thread():
    """One OpenMP thread for tiny-model modules: the tiny model is all per-op overhead, and
    extra threads only add barrier waits (much worse on a shared CPU)."""
    import torch

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Short chat and preference files (answers fit the tiny model's max_length)."""
    d = tmp_path_factory.mktemp("runner-data")
    chats, prefs = [], []
    for name, age, city in people(48, 0):
        user = {"role": "user", "content": f"{name} is {age}, lives in {city}."}
        answer = json.dumps({"name": name, "age": age, "city": city})
        chats.append({"messages": [user, {"role": "assistant", "content": answer}]})
        prefs.append(
            {
                "prompt": [user],
                "chosen": [{"role": "assistant", "content": answer}],
                "rejected": [{"role": "assistant", "content": f"{name} lives in {city}."}],
            }
        )
    return {
        "train": write_rows(d / "train.jsonl", chats[:40]),
        "eval": write_rows(d / "eval.jsonl", chats[40:]),
        "pref_train": write_rows(d / "pref.jsonl", prefs[:40]),
        "pref_eval": write_rows(d / "pref_eval.jsonl", prefs[40:]),
    }
