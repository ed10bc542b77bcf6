"""One dtype policy for training, the estimator, evaluation and chat.

Every place that loads a model or counts its bytes asks this module, so the estimate, the
run and the evaluation cannot disagree about what is in memory:

- **bf16 GPUs** (compute capability >= 8.0): bf16 autocast. LoRA loads the frozen base in
  bf16 and PEFT keeps the adapters in fp32 (``autocast_adapter_dtype``); QLoRA stores the
  linears in nf4 with bf16 compute and TRL casts its adapters to bf16 (the QLoRA paper's
  recipe, what TRL 1.x does for every quantized model).
- **GPUs without bf16** (V100, T4): fp16 mixed precision with fp32 master weights. The
  GradScaler refuses fp16 trainable parameters ("Attempting to unscale FP16 gradients"), and
  fp16 updates underflow, so every trainable tensor is fp32; a frozen LoRA/QLoRA base stays
  fp16 (it never receives an update). QLoRA's ``bnb_4bit_compute_dtype`` is fp16 there,
  never a hard-coded bf16 the GPU cannot compute in; the runner casts TRL's bf16 adapters
  back to fp32.
- **Full SFT** keeps fp32 master weights and trains under autocast (bf16 or fp16), never
  pure half-precision weights: a bf16 weight has 8 significant bits, so an update of
  lr 1e-5 x a gradient of order 1 on a weight of order 1e-2 rounds away (|w| / 256 >> 1e-5)
  and the model silently stops learning. The cost is counted as it runs: fp32 weights,
  fp32 gradients and fp32 AdamW states (16 bytes a parameter), plus, at the end of the
  forward pass, autocast's cached half-precision copy of every linear weight (torch caches
  the cast of a leaf tensor that requires grad until the outermost autocast region exits,
  checked with a dispatch mode; with checkpointing the recomputed block casts again), and an
  fp32 residual stream (the fp32 embedding output is added to every block's output). The
  equivalent of bf16 weights with stochastic rounding or Kahan summation needs an optimizer
  outside TRL's list, so it is not the default.
- **CPU and MPS**: fp32 everywhere (half precision there is slow or unsupported).

Evaluation and chat load the base as trained: nf4 with the same quantization config for
QLoRA, otherwise the dtype the training forward computed in (bf16 / fp16 / fp32).
``plain_trl=True`` describes what a plain TRL script does with a bf16 model (full SFT on
pure bf16 weights); the GPU.md calibration grid was measured that way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import TuituneError

if TYPE_CHECKING:
    from tuitune.core.spec import TrainSpec

DTYPES = ("bf16", "fp16", "fp32")
KINDS = ("full", "lora", "qlora")
BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "nf4": 0}
TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass(frozen=True)
class Precision:
    """The dtypes of one training run, and why."""

    kind: str  # full | lora | qlora: what is trained (DPO/reward/GRPO train LoRA adapters)
    compute: str  # dtype of the forward pass: the autocast dtype, or fp32 without autocast
    load: str  # dtype the base weights load in (QLoRA: its non-4-bit tensors)
    trainable: str  # dtype of the trainable parameters (the master weights the optimizer sees)
    autocast: str  # bf16 | fp16 | none (TrainingArguments bf16 / fp16)
    bnb_compute: str | None  # QLoRA's bnb_4bit_compute_dtype; None without 4-bit weights
    reason: str

    @property
    def load_in_4bit(self) -> bool:
        return self.kind == "qlora"

    @property
    def inference(self) -> str:
        """Dtype evaluation and chat load the (non-4-bit) weights in: the training forward's."""
        return self.compute

    @property
    def training_flags(self) -> dict[str, bool]:
        """TrainingArguments' ``bf16`` / ``fp16`` for this policy."""
        return {"bf16": self.autocast == "bf16", "fp16": self.autocast == "fp16"}

    def weight_bytes(self) -> int:
        return BYTES[self.load]

    def trainable_bytes(self) -> int:
        return BYTES[self.trainable]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """'bf16 autocast, weights bf16, trainable fp32': one line for logs and the report."""
        quant = f"nf4 (compute {self.bnb_compute})" if self.load_in_4bit else self.load
        how = f"{self.autocast} autocast" if self.autocast != "none" else "no autocast"
        return f"{how}, weights {quant}, trainable {self.trainable}"


def torch_dtype(name: str) -> Any:
    """The torch dtype for ``bf16`` / ``fp16`` / ``fp32`` (imports torch)."""
    import torch

    return getattr(torch, TORCH_NAMES[name])


def kind_of(method: str, *, load_in_4bit: bool = False) -> str:
    """full | lora | qlora for a TrainSpec method (dpo, reward and grpo train adapters)."""
    if method == "full":
        return "full"
    if method == "qlora" or load_in_4bit:
        return "qlora"
    return "lora"


def policy(
    method: str, *, device: str = "cuda", bf16_supported: bool = True, plain_trl: bool = False
) -> Precision:
    """The precision tuitune trains ``method`` with on ``device`` (cuda | mps | cpu)."""
    if device != "cuda":
        return for_compute(method, "fp32", plain_trl=plain_trl)
    return for_compute(method, "bf16" if bf16_supported else "fp16", plain_trl=plain_trl)


def for_compute(method: str, compute: str, *, plain_trl: bool = False) -> Precision:
    """The policy for a chosen compute dtype (what the estimator's ``TrainSetup.dtype`` is)."""
    if compute not in DTYPES:
        raise TuituneError(f"unknown dtype {compute!r}", fix=f"one of {', '.join(DTYPES)}")
    kind = kind_of(method)
    if kind not in KINDS:  # pragma: no cover - kind_of only returns KINDS
        raise TuituneError(f"unknown method {method!r}")
    if compute == "fp32":
        return Precision(
            kind,
            "fp32",
            "fp32",
            "fp32",
            "none",
            "fp32" if kind == "qlora" else None,
            "fp32: no half-precision compute here (CPU/MPS, or bf16 and fp16 both off)",
        )
    half = compute
    why_half = (
        "bf16 autocast: the GPU has bf16 (compute capability >= 8.0)"
        if half == "bf16"
        else "fp16 mixed precision: the GPU has no bf16 (compute capability < 8.0)"
    )
    if kind == "full":
        if plain_trl:
            return Precision(
                kind,
                half,
                half,
                half,
                half,
                None,
                f"{why_half}; pure {half} weights as a plain TRL script loads them (no fp32 "
                "master copy: small updates round away)",
            )
        return Precision(
            kind,
            half,
            "fp32",
            "fp32",
            half,
            None,
            f"{why_half}; full SFT keeps fp32 master weights (a {half} weight rounds away "
            "updates of lr 1e-5)",
        )
    if kind == "lora":
        return Precision(
            kind,
            half,
            half,
            "fp32",
            half,
            None,
            f"{why_half}; frozen base in {half}, LoRA adapters in fp32 (PEFT upcasts them)",
        )
    # QLoRA: TRL casts the adapters of a quantized model to bf16; without bf16 they go back
    # to fp32 (GradScaler needs fp32 trainable parameters, and the GPU has no bf16 math).
    trainable = "bf16" if half == "bf16" else "fp32"
    return Precision(
        kind,
        half,
        half,
        trainable,
        half,
        half,
        f"{why_half}; nf4 weights with {half} compute, adapters in {trainable}",
    )


def from_spec(spec: Any, *, cuda: bool) -> Precision:
    """What ``spec`` (a TrainSpec, or an EvalSpec or chat target that records how the run
    trained) trains with where torch sees CUDA (``cuda``) or not.

    The spec's ``bf16`` / ``fp16`` flags choose the compute dtype (the plan sets them from
    the GPU); ``use_cpu`` or no CUDA means fp32. A QLoRA spec with neither flag computes in
    fp32 rather than a silently chosen half precision.
    """
    return from_flags(
        spec.method,
        bf16=spec.bf16,
        fp16=spec.fp16,
        use_cpu=spec.use_cpu,
        load_in_4bit=spec.load_in_4bit,
        cuda=cuda,
    )


def from_flags(
    method: str,
    *,
    bf16: bool,
    fp16: bool,
    use_cpu: bool,
    load_in_4bit: bool,
    cuda: bool,
) -> Precision:
    """``from_spec`` on the spec's fields (the evaluation spec carries them)."""
    if bf16 and fp16:
        raise TuituneError("bf16 and fp16 are both on", fix="turn one of them off")
    kind = kind_of(method, load_in_4bit=load_in_4bit)
    if use_cpu or not cuda:
        return for_compute(kind, "fp32")
    return for_compute(kind, "bf16" if bf16 else "fp16" if fp16 else "fp32")


def spec_wants_gpu(spec: TrainSpec) -> bool:
    """True when ``spec`` can only mean a GPU run: half precision or 4-bit weights, not CPU."""
    if spec.use_cpu:
        return False
    return bool(spec.bf16 or spec.fp16 or spec.method == "qlora" or spec.load_in_4bit)


def quantization_config(prec: Precision) -> Any:
    """The BitsAndBytesConfig of a 4-bit policy (None otherwise): nf4, double quantization,
    the policy's compute dtype. Training, evaluation and chat all load QLoRA bases with it."""
    if not prec.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # missing or broken native library
        raise TuituneError(
            f"QLoRA needs bitsandbytes, which failed to import: {e}",
            fix="pip install bitsandbytes, or choose method lora",
        ) from None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(prec.bnb_compute or prec.compute),
    )


def load_kwargs(prec: Precision, *, training: bool, cuda: bool, device_index: int = 0) -> dict:
    """``from_pretrained`` dtype / quantization / device_map for the base under ``prec``.

    Training loads the master dtype (fp32 for full SFT); evaluation and chat load the dtype
    the training forward computed in. 4-bit weights are placed by ``device_map`` (a
    quantized model cannot be moved with ``.to``); other models are moved by the caller.
    """
    kwargs: dict[str, Any] = {"dtype": torch_dtype(prec.load if training else prec.inference)}
    quant = quantization_config(prec)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if cuda:
            kwargs["device_map"] = {"": device_index}
    return kwargs
