"""Peak GPU memory of a training run, from the model's config alone (no weights loaded).

Public estimators count weights and optimizer states and miss what actually fills the GPU:
saved activations (which tensors autograd keeps, including the fp32 copies RMSNorm and
PEFT's adapter upcast create), the LM head's buffers, the recomputed layer under gradient
checkpointing and the allocator's fragmentation. This module counts those tensors one by one
for the stack tuitune runs (transformers 5, PEFT 0.21, TRL 1.16 with its chunked fused LM head,
bitsandbytes 0.50) and was calibrated against measured H100 peaks (../shared/GPU.md); see
``benchmarks/vram_accuracy.py``.

The dtypes come from the one precision policy (``tuitune.core.hardware.precision``): full SFT keeps fp32
master weights under bf16/fp16 autocast (16 bytes a parameter with AdamW, plus autocast's cached
half-precision copies of the linear weights at the end of the forward); GPUs without bf16 train
fp16 mixed precision with fp32 trainable parameters. ``TrainSetup(plain_trl=True)`` counts what
a plain TRL script runs instead (full SFT on pure bf16 weights), which is how the calibration
grid was measured.

Two totals are reported: ``peak_reserved`` (what ``torch.cuda.max_memory_reserved`` shows and
what must fit) and ``nvidia_smi_used`` (reserved plus the CUDA context and paged optimizer
states, which live outside PyTorch's allocator).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.hardware import precision as _precision
from tuitune.core.models import catalog as model_catalog

GiB = 2**30
MiB = 2**20

METHODS = ("full", "lora", "qlora")
OBJECTIVES = ("sft", "dpo")
OPTIMIZERS = (
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_8bit",
    "paged_adamw_8bit",
    "paged_adamw",
    "adafactor",
    "sgd",
)
ATTN_IMPLEMENTATIONS = ("sdpa", "flash_attention_2", "flex_attention", "eager")
DTYPES = ("bf16", "fp16", "fp32")

# --- Calibration constants (fitted on ../shared/GPU.md; see benchmarks/vram_accuracy.py) ---
# The CUDA context and kernels loaded by torch + bitsandbytes: outside the caching allocator,
# visible in nvidia-smi only.
CUDA_CONTEXT_BYTES = 512 * MiB
# cuBLAS/cuBLASLt workspaces and small persistent buffers inside the allocator.
WORKSPACE_BYTES = 64 * MiB
# Backward working set of the layer being differentiated, per token: the incoming gradient
# and the gradients of the MLP's intermediate tensors (in units of the compute dtype).
BWD_HIDDEN_FACTOR = 4.0
BWD_INTERMEDIATE_FACTOR = 3.0
# The caching allocator keeps freed blocks: reserved = allocated * (1 + f) + constant; full
# SFT fragments more (gradients and optimizer states interleave with activations).
ALLOCATOR_FRACTION = 0.04
ALLOCATOR_FULL_EXTRA = 0.03
ALLOCATOR_CONSTANT = 64 * MiB
# TRL's fused LM head tiles (trl/kernels/chunked_logprob.py).
HEAD_TOKEN_CHUNK = 4096
HEAD_VOCAB_CHUNK = 32768
# bitsandbytes: nf4 blocks of 64 with double quantization (8-bit absmax, fp32 per 256 blocks).
NF4_BLOCK = 64
NF4_DQ_BLOCK = 256
# bitsandbytes 8-bit optimizers keep 32-bit state for tensors under this many elements.
BNB_MIN_8BIT_SIZE = 4096
BNB_8BIT_BLOCK = 256


# --------------------------------------------------------------------------------------
# Model shape
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linear:
    """One linear layer inside a decoder block."""

    name: str
    in_features: int
    out_features: int
    bias: bool
    group: str  # modules sharing one input tensor: "attn_in", "attn_out", "mlp_in", "mlp_out"

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers that decide memory, read from a ``config.json``."""

    name: str
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norms_per_layer: int = 2
    fused_qkv: bool = False
    fused_gate_up: bool = False
    final_logit_softcapping: float | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, name: str = "") -> ModelShape:
        """Read the fields of a transformers config dict (``config.json``)."""
        if "text_config" in cfg and "hidden_size" not in cfg:
            cfg = {**cfg["text_config"], "tie_word_embeddings": cfg.get("tie_word_embeddings")}
        try:
            mt = str(cfg.get("model_type", "llama"))
            h = int(cfg["hidden_size"])
            heads = int(cfg["num_attention_heads"])
            kv = int(cfg.get("num_key_value_heads") or heads)
            head_dim = int(cfg.get("head_dim") or h // heads)
            shape = cls(
                name=name or str(cfg.get("_name_or_path", mt)),
                model_type=mt,
                hidden_size=h,
                intermediate_size=int(cfg["intermediate_size"]),
                num_layers=int(cfg["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=kv,
                head_dim=head_dim,
                vocab_size=int(cfg["vocab_size"]),
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", mt in _TIED_BY_DEFAULT)),
                qkv_bias=bool(cfg.get("attention_bias", mt in ("qwen2",))),
                o_bias=bool(cfg.get("attention_bias", False)) and mt not in ("qwen2",),
                mlp_bias=bool(cfg.get("mlp_bias", False)),
                norms_per_layer=4 if mt in ("gemma2", "gemma3", "gemma3_text") else 2,
                fused_qkv=mt == "phi3",
                fused_gate_up=mt == "phi3",
                final_logit_softcapping=cfg.get("final_logit_softcapping"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TuituneError(
                f"config of {name or 'the model'} lacks a field the estimator needs ({e})",
                fix="use a decoder-only causal LM (llama, qwen2, mistral, gemma2, phi3...)",
            ) from None
        return shape

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linears(self) -> list[Linear]:
        """The linear layers of one decoder block, with PEFT's module names."""
        h, i = self.hidden_size, self.intermediate_size
        out: list[Linear] = []
        if self.fused_qkv:
            out.append(
                Linear("qkv_proj", h, self.q_dim + 2 * self.kv_dim, self.qkv_bias, "attn_in")
            )
        else:
            out.append(Linear("q_proj", h, self.q_dim, self.qkv_bias, "attn_in"))
            out.append(Linear("k_proj", h, self.kv_dim, self.qkv_bias, "attn_in"))
            out.append(Linear("v_proj", h, self.kv_dim, self.qkv_bias, "attn_in"))
        out.append(Linear("o_proj", self.q_dim, h, self.o_bias, "attn_out"))
        if self.fused_gate_up:
            out.append(Linear("gate_up_proj", h, 2 * i, self.mlp_bias, "mlp_in"))
        else:
            out.append(Linear("gate_proj", h, i, self.mlp_bias, "mlp_in"))
            out.append(Linear("up_proj", h, i, self.mlp_bias, "mlp_in"))
        out.append(Linear("down_proj", i, h, self.mlp_bias, "mlp_out"))
        return out

    def layer_params(self) -> int:
        norms = self.norms_per_layer * self.hidden_size
        return sum(lin.params for lin in self.linears()) + norms

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def param_count(self) -> int:
        """Total parameters as ``sum(p.numel() for p in model.parameters())`` counts them."""
        return (
            self.embedding_params()
            + self.num_layers * self.layer_params()
            + self.hidden_size  # final norm
            + self.lm_head_params()
        )

    def lora_targets(self, targets: list[str] | tuple[str, ...] | str) -> list[Linear]:
        """The linears of one block that PEFT wraps for ``target_modules=targets``.

        ``all-linear`` is every linear except the output layer (PEFT excludes lm_head).
        """
        if isinstance(targets, str):
            targets = [targets]
        lins = self.linears()
        if any(t in ("all-linear", "all_linear", "all") for t in targets):
            return lins
        names = {t.split(".")[-1] for t in targets}
        chosen = [lin for lin in lins if lin.name in names]
        if not chosen:
            known = ", ".join(lin.name for lin in lins)
            raise TuituneError(
                f"LoRA targets {sorted(names)} match no layer of {self.model_type}",
                fix=f"use all-linear or some of: {known}",
            )
        return chosen

    def lora_params(
        self, r: int, targets: list[str] | tuple[str, ...] | str, *, dora: bool = False
    ) -> int:
        """Exact LoRA parameter count: r * (in + out) per wrapped linear (+ out for DoRA)."""
        per_layer = sum(
            r * (lin.in_features + lin.out_features) + (lin.out_features if dora else 0)
            for lin in self.lora_targets(targets)
        )
        return per_layer * self.num_layers


_TIED_BY_DEFAULT = ("gemma", "gemma2", "gemma3", "gemma3_text")


# --------------------------------------------------------------------------------------
# Loading configs (no weights)
# --------------------------------------------------------------------------------------


def load_shape(model: str | Path, *, trust_remote_code: bool = False) -> ModelShape:
    """The shape of ``model``: a local directory, a bundled catalog name, or an HF-cache id.

    Reads ``config.json`` directly where it can (fast, no transformers import), the
    bundled catalog next, and ``AutoConfig`` from the local HF cache last. Never downloads.
    """
    ref = str(model).strip()
    path = Path(ref).expanduser()
    if path.is_dir():
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise TuituneError("no config.json in the model directory", path=path)
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TuituneError(f"invalid JSON: {e.msg}", path=cfg_file, line=e.lineno) from None
        return ModelShape.from_config(cfg, name=path.name)
    if ref in ("default", ""):
        entry = model_catalog.find("SmolLM2-135M-Instruct")
        assert entry is not None
        return ModelShape.from_config(entry.config, name=entry.name)
    entry = model_catalog.find(ref)
    if entry is not None:
        return ModelShape.from_config(entry.config, name=entry.name)
    cfg = _config_from_hf_cache(ref, trust_remote_code=trust_remote_code)
    if cfg is None:
        raise TuituneError(
            f"no config for {ref!r}: not a directory, not in the bundled catalog, not in the "
            "local Hugging Face cache",
            fix="pass a model directory, or a catalog name such as Qwen2.5-7B "
            "(tuitune estimate --list shows them)",
        )
    return ModelShape.from_config(cfg, name=ref.split("/")[-1])


def _config_from_hf_cache(repo_id: str, *, trust_remote_code: bool) -> dict[str, Any] | None:
    if "/" not in repo_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id, or no huggingface_hub: simply not cached
        cached = None
    if isinstance(cached, str):
        return json.loads(Path(cached).read_text(encoding="utf-8"))
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(
            repo_id, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception:  # not cached (OSError) or an unknown architecture
        return None
    return cfg.to_dict()


# --------------------------------------------------------------------------------------
# The estimate
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSetup:
    """What is trained and how: the memory-relevant part of a TrainSpec."""

    method: str = "lora"  # full | lora | qlora
    objective: str = "sft"  # sft | dpo
    seq_len: int = 1024
    micro_batch: int = 2
    grad_ckpt: bool = True
    lora_r: int = 16
    lora_targets: tuple[str, ...] = ("all-linear",)
    lora_dropout: float = 0.0
    use_dora: bool = False
    optim: str = "adamw_torch_fused"
    attn_impl: str = "sdpa"
    dtype: str = "bf16"  # compute dtype; what loads and trains in which dtype is the policy's
    num_gpus: int = 1
    fsdp: bool = False  # shard weights, grads and optimizer states across num_gpus
    # Count what a plain TRL script runs (full SFT on pure bf16/fp16 weights, no fp32 master
    # copy) instead of tuitune's policy: the GPU.md calibration grid was measured that way.
    plain_trl: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise TuituneError(
                f"unknown method {self.method!r}", fix=f"one of {', '.join(METHODS)}"
            )
        if self.objective not in OBJECTIVES:
            raise TuituneError(f"unknown objective {self.objective!r}", fix="sft or dpo")
        if self.optim not in OPTIMIZERS:
            raise TuituneError(
                f"unknown optimizer {self.optim!r}", fix=f"one of {', '.join(OPTIMIZERS)}"
            )
        if self.attn_impl not in ATTN_IMPLEMENTATIONS:
            raise TuituneError(
                f"unknown attention implementation {self.attn_impl!r}",
                fix=f"one of {', '.join(ATTN_IMPLEMENTATIONS)}",
            )
        if self.dtype not in DTYPES:
            raise TuituneError(f"unknown dtype {self.dtype!r}", fix=f"one of {', '.join(DTYPES)}")
        if self.seq_len < 1 or self.micro_batch < 1 or self.num_gpus < 1:
            raise TuituneError("seq_len, micro_batch and num_gpus must be positive")
        if self.method != "full" and self.lora_r < 1:
            raise TuituneError("LoRA rank must be at least 1")

    @classmethod
    def parse_method(cls, text: str) -> tuple[str, str]:
        """``"dpo"``, ``"dpo-lora"``, ``"qlora"``... -> (method, objective)."""
        t = text.strip().lower().replace("_", "-")
        if t == "dpo":
            return "lora", "dpo"
        if t.startswith("dpo-"):
            return t[4:], "dpo"
        return t, "sft"

    def with_(self, **changes: Any) -> TrainSetup:
        return replace(self, **changes)

    @property
    def label(self) -> str:
        return self.method if self.objective == "sft" else f"dpo-{self.method}"

    @property
    def precision(self) -> _precision.Precision:
        """Load, trainable and autocast dtypes of this setup (``tuitune.core.hardware.precision``)."""
        return _precision.for_compute(self.method, self.dtype, plain_trl=self.plain_trl)


@dataclass(frozen=True)
class MemoryEstimate:
    """Every component in bytes, per GPU, and the totals that matter."""

    model: str
    setup: TrainSetup
    total_params: int
    trainable_params: int
    components: dict[str, int]  # what is resident at the peak, by cause
    peak_phase: str  # "forward end" | "backward" | "optimizer step"
    peak_allocated: int
    peak_reserved: int  # what must fit (torch.cuda.max_memory_reserved)
    cuda_context: int
    outside_allocator: int  # paged optimizer states (cudaMallocManaged)
    nvidia_smi_used: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["setup"]["lora_targets"] = list(self.setup.lora_targets)
        d["notes"] = list(self.notes)
        return d

    def fits(self, capacity: int, *, margin: float = 0.1) -> bool:
        """True when the peak reserved memory plus ``margin`` of it fits ``capacity`` bytes."""
        return self.peak_reserved * (1.0 + margin) <= capacity


_COMPONENTS = (
    "weights",
    "weight_casts",
    "trainable_params",
    "gradients",
    "optimizer_states",
    "reference_model",
    "activations",
    "logits_and_loss",
    "workspace",
    "allocator_overhead",
)


def _compute_bytes(setup: TrainSetup) -> int:
    return 4 if setup.dtype == "fp32" else 2


def _weight_bytes(shape: ModelShape, setup: TrainSetup) -> tuple[int, list[str]]:
    """Weights in memory, in the policy's load dtype (fp32 master weights for full SFT), or
    nf4 + double quant for QLoRA.

    bitsandbytes quantizes the decoder's linears only: embeddings, lm_head and norms stay in
    the load dtype (bf16 or fp16), which is why 4-bit peaks sit far above params / 2. The
    runner does not call PEFT's ``prepare_model_for_kbit_training`` (TRL 1.x does not
    either), so those tensors are not upcast to fp32.
    """
    prec = setup.precision
    a = prec.weight_bytes()
    notes: list[str] = []
    if setup.method != "qlora":
        return shape.param_count() * a, notes
    lin = shape.num_layers * sum(lin.in_features * lin.out_features for lin in shape.linears())
    bias = shape.num_layers * sum(lin.out_features for lin in shape.linears() if lin.bias)
    blocks = math.ceil(lin / NF4_BLOCK)
    quant = lin // 2 + blocks + 4 * math.ceil(blocks / NF4_DQ_BLOCK)
    rest = shape.param_count() - lin - bias
    notes.append(
        f"QLoRA keeps embeddings, lm_head and norms in {prec.load} (bitsandbytes skips them)"
    )
    return quant + (rest + bias) * a, notes


def _trainable(shape: ModelShape, setup: TrainSetup) -> int:
    if setup.method == "full":
        return shape.param_count()
    return shape.lora_params(setup.lora_r, setup.lora_targets, dora=setup.use_dora)


def _trainable_dtype_bytes(setup: TrainSetup) -> int:
    """Adapters: PEFT upcasts them to fp32 on a half-precision base (autocast_adapter_dtype);
    TRL casts them to bf16 for 4-bit bases (fp32 again without bf16). Full SFT trains fp32
    master weights (pure half-precision weights with ``plain_trl``)."""
    return setup.precision.trainable_bytes()


def _autocast_over_fp32(setup: TrainSetup) -> bool:
    """Full SFT on fp32 master weights under autocast: the embedding output (and with it the
    residual stream) is fp32, and autocast casts every linear weight to half precision."""
    prec = setup.precision
    return setup.method == "full" and prec.load == "fp32" and prec.autocast != "none"


def _optimizer_bytes(
    n_params: int, tensor_sizes: list[int], param_bytes: int, optim: str
) -> tuple[int, int]:
    """(bytes inside the torch allocator, bytes in paged/managed memory) of optimizer state.

    torch AdamW keeps exp_avg and exp_avg_sq in the parameter's dtype; bitsandbytes 8-bit keeps
    two uint8 states plus fp32 absmax per 256 values (32-bit state for tensors < 4096 values);
    paged variants put the state in CUDA managed memory, outside PyTorch's allocator.
    """
    if optim in ("adamw_torch", "adamw_torch_fused"):
        return 2 * n_params * param_bytes, 0
    if optim == "sgd":
        return 0, 0
    if optim == "adafactor":  # factored second moment: rows + columns, fp32
        return sum(4 * 2 * int(math.sqrt(s)) for s in tensor_sizes), 0
    if optim in ("adamw_8bit", "paged_adamw_8bit"):
        total = 0
        for s in tensor_sizes:
            if s < BNB_MIN_8BIT_SIZE:
                total += 8 * s
            else:
                total += 2 * s + 2 * 4 * math.ceil(s / BNB_8BIT_BLOCK)
        return (0, total) if optim.startswith("paged") else (total, 0)
    if optim == "paged_adamw":
        return 0, 8 * n_params
    raise TuituneError(f"unknown optimizer {optim!r}")


def _trainable_tensor_sizes(shape: ModelShape, setup: TrainSetup) -> list[int]:
    if setup.method == "full":
        per_layer = [lin.in_features * lin.out_features for lin in shape.linears()]
        per_layer += [lin.out_features for lin in shape.linears() if lin.bias]
        per_layer += [shape.hidden_size] * shape.norms_per_layer
        sizes = per_layer * shape.num_layers + [shape.embedding_params(), shape.hidden_size]
        if shape.lm_head_params():
            sizes.append(shape.lm_head_params())
        return sizes
    per_layer = []
    for lin in shape.lora_targets(setup.lora_targets):
        per_layer += [setup.lora_r * lin.in_features, setup.lora_r * lin.out_features]
        if setup.use_dora:
            per_layer.append(lin.out_features)
    return per_layer * shape.num_layers


def layer_activation_bytes(shape: ModelShape, setup: TrainSetup, seq_len: int) -> tuple[int, int]:
    """(bytes per token, bytes per layer) that autograd saves for one decoder block.

    Counted tensor by tensor from the saved tensors of a real forward (see the tests):
    RMSNorm keeps an fp32 copy of its input; with fp32 adapters under bf16 autocast PEFT feeds
    each LoRA module its own bf16 copy of the input; frozen linears keep no input at all;
    SDPA/flash/flex keep q, k, v, the output and a log-sum-exp, eager also the S x S scores.
    """
    a = _compute_bytes(setup)
    over_fp32 = _autocast_over_fp32(setup)
    resid = 4 if over_fp32 else a  # dtype of the residual stream
    h, i = shape.hidden_size, shape.intermediate_size
    full = setup.method == "full"
    targets = [] if full else shape.lora_targets(setup.lora_targets)
    # PEFT's input cast: fp32 adapters, half-precision activations -> one copy per module
    prec = setup.precision
    adapter_copy = not full and prec.trainable == "fp32" and prec.autocast != "none"
    r = setup.lora_r
    per_tok = 0
    # Norms: fp32 upcast of the input (+ the rsqrt); full SFT also keeps the normalised input
    per_tok += shape.norms_per_layer * (4 * h + 4 + (resid * h if full else 0))
    # Inputs kept for weight gradients (shared by the modules of one group)
    group_in = {"attn_in": a * h, "attn_out": 0, "mlp_in": a * h, "mlp_out": a * i}
    kept: set[str] = set()
    if full:
        kept = set(group_in)
    for lin in targets:
        per_tok += a * r  # lora_A output, kept by lora_B
        if adapter_copy:
            per_tok += a * lin.in_features
            if setup.lora_dropout > 0:
                per_tok += lin.in_features  # dropout mask
        else:
            kept.add(lin.group)
            if setup.lora_dropout > 0:
                per_tok += (a + 1) * lin.in_features
    per_tok += sum(group_in[g] for g in kept)
    if over_fp32:
        # autocast casts the fp32 normalised input once per linear (it caches only weights):
        # q, k and v (gate and up) each keep their own half-precision copy
        for g in ("attn_in", "mlp_in"):
            n = sum(1 for lin in shape.linears() if lin.group == g)
            per_tok += group_in[g] * (n - 1)
    # Attention
    q, kv = shape.q_dim, shape.kv_dim
    if setup.attn_impl == "eager":
        per_tok += a * (3 * q) + a * q + (4 + a) * shape.num_heads * seq_len
    else:
        per_tok += a * (2 * q + 2 * kv) + 4 * shape.num_heads
    # MLP: gate output, up output and act(gate) (the product is counted with mlp_out)
    per_tok += 3 * a * i
    # Per-layer constants: bf16 copies autocast makes of fp32 adapter weights
    per_layer = 0
    if adapter_copy:
        per_layer = sum(a * r * (lin.in_features + lin.out_features) for lin in targets)
    return per_tok, per_layer


def estimate(shape: ModelShape, setup: TrainSetup) -> MemoryEstimate:
    """Peak training memory of ``setup`` on ``shape``, per GPU."""
    a = _compute_bytes(setup)
    h, i, L, V = shape.hidden_size, shape.intermediate_size, shape.num_layers, shape.vocab_size
    prec = setup.precision
    notes: list[str] = [f"precision: {prec.describe()} ({prec.reason})"]
    over_fp32 = _autocast_over_fp32(setup)
    resid = 4 if over_fp32 else a  # the residual stream (block inputs, final norm)
    dpo = setup.objective == "dpo"
    # DPO concatenates chosen and rejected: twice the sequences through the policy
    tokens = setup.micro_batch * setup.seq_len * (2 if dpo else 1)
    shard = setup.num_gpus if setup.fsdp else 1

    weights, wnotes = _weight_bytes(shape, setup)
    notes += wnotes
    weights //= shard
    n_train = _trainable(shape, setup)
    tb = _trainable_dtype_bytes(setup)
    adapters = 0 if setup.method == "full" else n_train * tb
    if setup.method == "lora" and tb == 4 and setup.dtype != "fp32":
        notes.append(
            f"PEFT upcasts LoRA weights to fp32 on a {prec.load} base (autocast_adapter_dtype)"
        )
    grads = n_train * tb // shard
    opt_in, opt_paged = _optimizer_bytes(
        n_train, _trainable_tensor_sizes(shape, setup), tb, setup.optim
    )
    opt_in //= shard
    opt_paged //= shard
    # torch's foreach AdamW (adamw_torch on CUDA) builds sqrt(exp_avg_sq) for every parameter
    # at once: one parameter-sized temporary at the step (the fused kernel makes none). fp32
    # setups are the CPU/MPS ones, where torch has no foreach kernels and loops per tensor.
    foreach = setup.optim == "adamw_torch" and setup.dtype != "fp32"
    step_temp = n_train * tb // shard if foreach else 0
    # Autocast's half-precision copies of the linear weights (fp32 master weights only): all
    # of them at the end of the forward (cached until autocast exits, or saved for backward),
    # one block's during a checkpointed backward
    layer_lin = sum(lin.in_features * lin.out_features for lin in shape.linears())
    casts_all = L * layer_lin * a // shard if over_fp32 else 0
    casts_layer = layer_lin * a if over_fp32 else 0
    if over_fp32:
        notes.append(
            f"full SFT: fp32 master weights, gradients and AdamW states; autocast holds a "
            f"{prec.autocast} copy of every linear weight at the end of the forward"
        )
    reference = 0
    if dpo and setup.method == "full":
        reference = weights  # a frozen copy of the policy
        notes.append("full DPO keeps a frozen copy of the model as the reference")
    elif dpo:
        notes.append("DPO uses the base with the adapter disabled as the reference (no copy)")

    per_tok, per_layer_const = layer_activation_bytes(shape, setup, setup.seq_len)
    layer_act = per_tok * tokens + per_layer_const
    # Around the blocks: the final norm and the fused head's compacted hidden states
    outer = tokens * (4 * h + 4 + resid * h + resid * h + 7 * 4)
    if setup.grad_ckpt:
        saved = L * tokens * resid * h + outer  # each block's input, non-reentrant checkpointing
        recompute = layer_act
    else:
        saved = L * layer_act + outer
        recompute = 0
    bwd_ws = tokens * (BWD_HIDDEN_FACTOR * resid * h + BWD_INTERMEDIATE_FACTOR * a * i)
    # TRL's chunked fused LM head: one [4096 x 32768] tile, fp32 grad of the hidden states and,
    # when the head is trained (full SFT), an fp32 gradient of the whole head plus its cast.
    tile = min(tokens, HEAD_TOKEN_CHUNK) * min(V, HEAD_VOCAB_CHUNK) * a
    head_bwd = tile + tokens * h * 4
    if setup.method == "full":  # fp32 gradient of the head, cast to half-precision weights
        head_bwd += V * h * (4 + (0 if prec.trainable == "fp32" else a))
    base = {
        "weights": weights,
        "trainable_params": adapters,
        "optimizer_states": opt_in,
        "reference_model": reference,
        "workspace": WORKSPACE_BYTES,
    }
    lora_grads = 0 if setup.method == "full" else grads
    phases: dict[str, dict[str, int]] = {
        # end of forward / start of backward: every saved activation plus the head's backward
        "backward start": {
            **base,
            "weight_casts": casts_all,
            "activations": saved,
            "logits_and_loss": head_bwd,
        },
        # inside a block's backward: its recomputed activations and the gradients flowing
        "backward": {
            **base,
            "weight_casts": casts_layer if setup.grad_ckpt else casts_all,
            "gradients": lora_grads,
            "activations": saved + recompute + bwd_ws,
        },
        # optimizer step: weights, gradients and states together
        "optimizer step": {
            **base,
            "gradients": grads,
            "optimizer_states": opt_in + step_temp,
        },
    }
    if setup.grad_ckpt and setup.method == "full":
        # checkpoints are freed as gradients appear: at the first block almost all grads exist
        phases["backward"] = {
            **base,
            "weight_casts": casts_layer,
            "gradients": grads,
            "activations": recompute + bwd_ws + tokens * resid * h,
        }
    if setup.method == "qlora":
        # loading: each bf16 tensor lands on the GPU before bitsandbytes quantizes it
        largest = max(lin.in_features * lin.out_features for lin in shape.linears())
        phases["loading"] = {"weights": weights, "workspace": 4 * largest * prec.weight_bytes()}
    phase = max(phases, key=lambda k: sum(phases[k].values()))
    components = dict.fromkeys(_COMPONENTS, 0)
    components.update({k: int(v) for k, v in phases[phase].items()})  # bytes are whole
    allocated = sum(components.values())
    frac = ALLOCATOR_FRACTION + (ALLOCATOR_FULL_EXTRA if setup.method == "full" else 0.0)
    reserved = int(allocated * (1 + frac) + ALLOCATOR_CONSTANT)
    components["allocator_overhead"] = reserved - allocated
    if setup.num_gpus > 1:
        how = (
            "FSDP shards weights, gradients and optimizer states"
            if setup.fsdp
            else "data parallel: each GPU holds a full copy"
        )
        notes.append(f"figures are per GPU ({setup.num_gpus} GPUs, {how})")
    if opt_paged:
        notes.append(
            "paged optimizer states live in CUDA managed memory, outside PyTorch's allocator"
        )
    context = CUDA_CONTEXT_BYTES
    return MemoryEstimate(
        model=shape.name,
        setup=setup,
        total_params=shape.param_count() + (n_train if setup.method != "full" else 0),
        trainable_params=n_train,
        components=components,
        peak_phase=phase,
        peak_allocated=int(allocated),
        peak_reserved=reserved,
        cuda_context=context,
        outside_allocator=opt_paged,
        nvidia_smi_used=reserved + context + opt_paged,
        notes=tuple(notes),
    )


def estimate_model(model: str | Path, setup: TrainSetup) -> MemoryEstimate:
    """``estimate(load_shape(model), setup)``: the entry point for a path, id or catalog name."""
    return estimate(load_shape(model), setup)


def format_bytes(n: float) -> str:
    """Human-readable GiB/MiB with two significant decimals."""
    if abs(n) >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n / MiB:.0f} MiB"
