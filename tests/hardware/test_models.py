"""Model resolution: default, local paths, HF ids offline, atomic conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.models import resolve as models


def test_local_model_directory_resolves(tiny_model: Path) -> None:
    m = models.resolve_model(str(tiny_model))
    assert m.source == "local" and m.path == tiny_model.resolve()


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(TuituneError, match="not a model directory"):
        models.resolve_model(str(tmp_path))


def test_model_path_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_text("x")
    with pytest.raises(TuituneError, match="not a directory"):
        models.resolve_model(str(f))


def test_hf_id_not_cached_and_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TuituneError) as e:
        models.resolve_model("nobody/no-such-model-xyz")
    assert "not in the local Hugging Face cache" in str(e.value)


def test_garbage_reference() -> None:
    with pytest.raises(TuituneError, match="neither a directory nor"):
        models.resolve_model("not a model at all")


def test_conversion_killed_half_way_leaves_nothing_finished(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A conversion that dies mid-write leaves no directory that looks complete, and the
    temp folder is cleaned; the next call converts again from scratch."""
    monkeypatch.setenv("TUITUNE_HOME", str(tmp_path / "home"))
    calls = []

    def dying(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        calls.append(out)
        raise KeyboardInterrupt  # as if killed half-way

    monkeypatch.setattr(models, "convert_gguf", dying)
    with pytest.raises(KeyboardInterrupt):
        models.ensure_default_model()
    target = models.default_model_dir()
    assert not target.exists()
    assert not list(target.parent.glob(f".{target.name}.*"))

    def good(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"0")

    monkeypatch.setattr(models, "convert_gguf", good)
    assert models.ensure_default_model() == target
    assert models._is_complete(target)


@pytest.mark.slow
def test_default_model_converts_and_generates(default_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_model)
    model = AutoModelForCausalLM.from_pretrained(default_model)
    assert tok.model_max_length < 1e9
    assert 130e6 < model.num_parameters() < 140e6
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Say hello."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
