"""Well-known model families and sizes, with their published config values.

The wizard lists these, and the VRAM estimator needs only the architecture numbers below
(the fields of each model's ``config.json`` on the Hub), so estimates work offline and
without downloading anything. Values are copied from the published configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogModel:
    """One listed model: where it lives on the Hub and the config the estimator needs."""

    family: str
    size: str  # label as the family publishes it: "0.5B", "7B", ...
    hf_id: str
    config: dict[str, Any]
    note: str = ""

    @property
    def name(self) -> str:
        return self.hf_id.split("/")[-1]


def _llama(h: int, i: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, **kw: Any):
    return dict(
        model_type="llama",
        hidden_size=h,
        intermediate_size=i,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        vocab_size=vocab,
        tie_word_embeddings=tie,
        **kw,
    )


def _qwen2(h: int, i: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, **kw: Any):
    return {**_llama(h, i, layers, heads, kv, vocab, tie, **kw), "model_type": "qwen2"}


def _mistral(h: int, i: int, layers: int, heads: int, kv: int, vocab: int, **kw: Any):
    return {**_llama(h, i, layers, heads, kv, vocab, False, **kw), "model_type": "mistral"}


def _gemma2(h: int, i: int, layers: int, heads: int, kv: int, head_dim: int):
    return dict(
        model_type="gemma2",
        hidden_size=h,
        intermediate_size=i,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        vocab_size=256000,
        tie_word_embeddings=True,
        final_logit_softcapping=30.0,
    )


def _phi3(h: int, i: int, layers: int, heads: int, kv: int, vocab: int, tie: bool):
    return {**_llama(h, i, layers, heads, kv, vocab, tie), "model_type": "phi3"}


CATALOG: tuple[CatalogModel, ...] = (
    # SmolLM2 (HuggingFaceTB): Llama architecture, tied embeddings, 49k vocab.
    CatalogModel(
        "SmolLM2",
        "135M",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        _llama(576, 1536, 30, 9, 3, 49152, True),
        "tuitune's embedded default",
    ),
    CatalogModel(
        "SmolLM2",
        "360M",
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        _llama(960, 2560, 32, 15, 5, 49152, True),
    ),
    CatalogModel(
        "SmolLM2",
        "1.7B",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        _llama(2048, 8192, 24, 32, 32, 49152, True),
    ),
    # Qwen2.5: q/k/v biases; 0.5B-3B tie embeddings; 7B+ have a 152064 vocab.
    CatalogModel(
        "Qwen2.5", "0.5B", "Qwen/Qwen2.5-0.5B-Instruct", _qwen2(896, 4864, 24, 14, 2, 151936, True)
    ),
    CatalogModel(
        "Qwen2.5", "1.5B", "Qwen/Qwen2.5-1.5B-Instruct", _qwen2(1536, 8960, 28, 12, 2, 151936, True)
    ),
    CatalogModel(
        "Qwen2.5", "3B", "Qwen/Qwen2.5-3B-Instruct", _qwen2(2048, 11008, 36, 16, 2, 151936, True)
    ),
    CatalogModel(
        "Qwen2.5", "7B", "Qwen/Qwen2.5-7B-Instruct", _qwen2(3584, 18944, 28, 28, 4, 152064, False)
    ),
    CatalogModel(
        "Qwen2.5", "14B", "Qwen/Qwen2.5-14B-Instruct", _qwen2(5120, 13824, 48, 40, 8, 152064, False)
    ),
    CatalogModel(
        "Qwen2.5", "32B", "Qwen/Qwen2.5-32B-Instruct", _qwen2(5120, 27648, 64, 40, 8, 152064, False)
    ),
    CatalogModel(
        "Qwen2.5", "72B", "Qwen/Qwen2.5-72B-Instruct", _qwen2(8192, 29568, 80, 64, 8, 152064, False)
    ),
    # Llama 3.x (gated on the Hub: needs an accepted licence).
    CatalogModel(
        "Llama 3.x",
        "1B",
        "meta-llama/Llama-3.2-1B-Instruct",
        _llama(2048, 8192, 16, 32, 8, 128256, True),
    ),
    CatalogModel(
        "Llama 3.x",
        "3B",
        "meta-llama/Llama-3.2-3B-Instruct",
        _llama(3072, 8192, 28, 24, 8, 128256, True),
    ),
    CatalogModel(
        "Llama 3.x",
        "8B",
        "meta-llama/Llama-3.1-8B-Instruct",
        _llama(4096, 14336, 32, 32, 8, 128256, False),
    ),
    CatalogModel(
        "Llama 3.x",
        "70B",
        "meta-llama/Llama-3.3-70B-Instruct",
        _llama(8192, 28672, 80, 64, 8, 128256, False),
    ),
    # Phi-4 (Microsoft): Phi3 architecture with fused qkv_proj and gate_up_proj.
    CatalogModel(
        "Phi-4", "3.8B", "microsoft/Phi-4-mini-instruct", _phi3(3072, 8192, 32, 24, 8, 200064, True)
    ),
    CatalogModel("Phi-4", "14B", "microsoft/phi-4", _phi3(5120, 17920, 40, 40, 10, 100352, False)),
    # Gemma 2 (Google): head_dim 256 on 2B/9B, four norms per layer, 256k vocab.
    CatalogModel("Gemma 2", "2B", "google/gemma-2-2b-it", _gemma2(2304, 9216, 26, 8, 4, 256)),
    CatalogModel("Gemma 2", "9B", "google/gemma-2-9b-it", _gemma2(3584, 14336, 42, 16, 8, 256)),
    CatalogModel("Gemma 2", "27B", "google/gemma-2-27b-it", _gemma2(4608, 36864, 46, 32, 16, 128)),
    # Mistral
    CatalogModel(
        "Mistral",
        "7B",
        "mistralai/Mistral-7B-Instruct-v0.3",
        _mistral(4096, 14336, 32, 32, 8, 32768),
    ),
    CatalogModel(
        "Mistral",
        "12B",
        "mistralai/Mistral-Nemo-Instruct-2407",
        _mistral(5120, 14336, 40, 32, 8, 131072, head_dim=128),
    ),
    # DeepSeek-R1 distills: Qwen2.5 / Llama 3 bodies (the 1.5B unties its embeddings).
    CatalogModel(
        "DeepSeek-R1-Distill",
        "1.5B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        _qwen2(1536, 8960, 28, 12, 2, 151936, False),
    ),
    CatalogModel(
        "DeepSeek-R1-Distill",
        "7B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        _qwen2(3584, 18944, 28, 28, 4, 152064, False),
    ),
    CatalogModel(
        "DeepSeek-R1-Distill",
        "8B",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        _llama(4096, 14336, 32, 32, 8, 128256, False),
    ),
    CatalogModel(
        "DeepSeek-R1-Distill",
        "14B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        _qwen2(5120, 13824, 48, 40, 8, 152064, False),
    ),
    CatalogModel(
        "DeepSeek-R1-Distill",
        "32B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        _qwen2(5120, 27648, 64, 40, 8, 152064, False),
    ),
    CatalogModel(
        "DeepSeek-R1-Distill",
        "70B",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        _llama(8192, 28672, 80, 64, 8, 128256, False),
    ),
)


def _norm(text: str) -> str:
    return text.strip().lower().replace("_", "-")


def _keys(model: CatalogModel) -> set[str]:
    """Names a user may type for this entry: the Hub id, the bare name, and the base-model
    spellings without the instruct suffix (base checkpoints share the architecture)."""
    hf = _norm(model.hf_id)
    keys = {hf, hf.split("/")[-1]}
    for key in list(keys):
        keys.add(key.replace("-instruct", ""))
        if key.endswith("-it"):
            keys.add(key.removesuffix("-it"))
    return keys


def find(ref: str) -> CatalogModel | None:
    """The catalog entry for a Hub id, a bare name ("Qwen2.5-7B") or a base-model id."""
    want = _norm(ref)
    for m in CATALOG:
        if want in _keys(m):
            return m
    return None


def families() -> list[str]:
    """Family names in catalog order (the wizard's Model screen groups by these)."""
    seen: list[str] = []
    for m in CATALOG:
        if m.family not in seen:
            seen.append(m.family)
    return seen
