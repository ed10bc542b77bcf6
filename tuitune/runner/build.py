"""Build the TRL trainer a TrainSpec asks for: SFT (full, LoRA, QLoRA), DPO, reward, GRPO.

Everything here is a thin mapping from spec fields onto TRL / PEFT / transformers objects;
the training itself is theirs. Dtypes come from the one policy in ``tuitune.core.hardware.precision``
(the estimator counts the same): the load dtype, QLoRA's compute dtype, autocast, and fp32
trainable parameters wherever the policy says so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tuitune.core.data import training_view
from tuitune.core.errors import TuituneError
from tuitune.core.hardware import precision
from tuitune.core.hardware.torch_device import INSTALL_HINT, no_cuda_reason
from tuitune.core.runs.nodes import multi_node_env
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec
from tuitune.runner.rewards import grpo_datasets, reward_function

# Fraction of the run between evaluations / checkpoints when the spec says 0 (auto):
# Trainer reads a float in [0, 1) as a ratio of the total steps.
AUTO_EVAL_RATIO = 0.1
AUTO_SAVE_RATIO = 0.2


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def model_precision(spec: TrainSpec) -> precision.Precision:
    """The dtypes ``spec`` trains with on this machine (CPU or no CUDA: fp32)."""
    return precision.from_spec(spec, cuda=cuda_available())


def require_gpu_if_asked(spec: TrainSpec) -> None:
    """Refuse to train on the CPU a spec planned for a GPU (bf16, fp16 or 4-bit weights,
    use_cpu off) when torch has no CUDA: a CPU-only torch would otherwise run it silently,
    hundreds of times slower."""
    if not precision.spec_wants_gpu(spec) or cuda_available():
        return

    asks = "bf16" if spec.bf16 else "fp16" if spec.fp16 else "4-bit (QLoRA) weights"
    raise TuituneError(
        f"the spec asks for a GPU ({asks}) but torch cannot use one: {no_cuda_reason()}",
        fix=f"{INSTALL_HINT}; or set use_cpu true to train on the CPU (slowly)",
    )


def load_tokenizer(spec: TrainSpec) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.model, trust_remote_code=spec.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def quantization_config(spec: TrainSpec, prec: precision.Precision | None = None) -> Any:
    """QLoRA's recipe (``precision.quantization_config``): nf4 weights, double quantization,
    compute in the policy's dtype (bf16 where the GPU has it, fp16 where not, fp32 on the
    CPU). Evaluation and chat load the base through this same config."""
    if spec.method != "qlora" and not spec.load_in_4bit:
        return None
    return precision.quantization_config(prec or model_precision(spec))


def model_load_kwargs(spec: TrainSpec, prec: precision.Precision | None = None) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for the base: the policy's load dtype (fp32 master
    weights for full SFT), the 4-bit config and, for 4-bit weights on CUDA, this rank's GPU."""
    import os

    prec = prec or model_precision(spec)
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    kwargs.update(
        precision.load_kwargs(
            prec,
            training=True,
            cuda=cuda_available(),
            device_index=int(os.environ.get("LOCAL_RANK", "0")),
        )
    )
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    return kwargs


def load_model(spec: TrainSpec, *, sequence_classification: bool = False) -> Any:
    """The base model from ``spec.model`` (a local directory), quantized for QLoRA.

    PEFT's ``prepare_model_for_kbit_training`` is not called: it upcasts every non-4-bit
    tensor (embeddings, lm_head, norms: about 2 GiB on a 7B model) to fp32, and TRL 1.x's
    trainers already do the rest of it (freezing the base through PEFT, enabling input
    gradients for checkpointing). So tuitune's QLoRA holds what plain TRL holds, which is
    what the estimator counts and the GPU.md grid measured.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs = model_load_kwargs(spec)
    if sequence_classification:
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.model, num_labels=1, **kwargs
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(spec.model, **kwargs)
    return model


def apply_trainable_dtype(model: Any, prec: precision.Precision) -> int:
    """Cast trainable tensors to the policy's master dtype; the number cast.

    TRL casts the adapters of a 4-bit model to bf16 and a reward head copied from an fp16
    base is fp16; where the policy wants fp32 master weights (fp16 mixed precision: the
    GradScaler refuses fp16 gradients, and bf16 has no hardware on those GPUs) they go back
    to fp32. Called after the trainer is built and before it creates its optimizer.
    """
    if prec.trainable != "fp32":
        return 0
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


def lora_config(spec: TrainSpec, *, task_type: str = "CAUSAL_LM") -> Any:
    if not spec.uses_peft:
        return None
    from peft import LoraConfig

    targets: Any = list(spec.lora_target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=targets,
        use_dora=spec.use_dora,
        bias="none",
        task_type=task_type,
    )


def optimizer_name(spec: TrainSpec) -> str:
    """QLoRA's paged 8-bit AdamW needs CUDA; on CPU fall back to plain AdamW."""
    optim = spec.optim
    if spec.method == "qlora" and optim == "adamw_torch":
        optim = "paged_adamw_8bit"
    if ("8bit" in optim or "paged" in optim) and not cuda_available():
        return "adamw_torch"
    return optim


def common_args(spec: TrainSpec, run: RunDir, *, has_eval: bool) -> dict[str, Any]:
    """TrainingArguments shared by every TRL config."""
    use_cpu = spec.use_cpu or not cuda_available()
    return dict(
        output_dir=str(run.checkpoints),
        seed=spec.seed,
        data_seed=spec.seed,
        learning_rate=spec.learning_rate,
        num_train_epochs=spec.num_train_epochs,
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.per_device_train_batch_size,
        per_device_eval_batch_size=spec.per_device_train_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        lr_scheduler_type=spec.lr_scheduler_type,
        warmup_steps=spec.warmup_ratio,
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        optim=optimizer_name(spec),
        gradient_checkpointing=spec.gradient_checkpointing,
        **model_precision(spec).training_flags,
        use_cpu=use_cpu,
        logging_steps=spec.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(spec.eval_steps or AUTO_EVAL_RATIO) if has_eval else None,
        save_strategy="steps",
        save_steps=spec.save_steps or AUTO_SAVE_RATIO,
        save_total_limit=max(1, spec.save_total_limit),
        report_to=list(spec.report_to) or "none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        torch_compile=spec.torch_compile,
        use_liger_kernel=spec.use_liger_kernel,
        ddp_find_unused_parameters=False if spec.uses_peft else None,
        # Across machines every node keeps its own full checkpoints, so a resume needs no
        # shared filesystem (each node's local rank 0 writes into its own folder).
        save_on_each_node=multi_node_env(),
    )


def build_trainer(spec: TrainSpec, run: RunDir, callbacks: list[Any]) -> tuple[Any, Any]:
    """(trainer, tokenizer) for ``spec``; the model is loaded here."""
    if not spec.model or not Path(spec.model).is_dir():
        raise TuituneError(
            "the model directory does not exist",
            path=spec.model or "spec.model",
            fix="resolve the model before launching (tuitune.core.models.resolve.resolve_model)",
        )
    require_gpu_if_asked(spec)
    tokenizer = load_tokenizer(spec)
    builder = {
        "full": _build_sft,
        "lora": _build_sft,
        "qlora": _build_sft,
        "dpo": _build_dpo,
        "reward": _build_reward,
        "grpo": _build_grpo,
    }[spec.method]
    trainer = builder(spec, run, tokenizer, callbacks)
    prec = model_precision(spec)
    cast = apply_trainable_dtype(trainer.model, prec)
    # train.log says which dtypes this run really used (the estimate counted the same)
    print(
        f"tuitune precision: {prec.describe()} ({prec.reason})"
        + (f"; {cast} trainable tensors cast to fp32" if cast else ""),
        file=sys.stderr,
        flush=True,
    )
    return trainer, tokenizer


def _build_sft(spec: TrainSpec, run: RunDir, tokenizer: Any, callbacks: list[Any]) -> Any:
    from trl import SFTConfig, SFTTrainer

    inputs = training_view.sft_trainer_inputs(spec, tokenizer)
    kwargs = common_args(spec, run, has_eval=inputs.eval is not None)
    kwargs.update(max_length=spec.max_length, packing=spec.packing)
    kwargs.update(inputs.config_kwargs)
    return SFTTrainer(
        model=load_model(spec),
        args=SFTConfig(**kwargs),
        train_dataset=inputs.train,
        eval_dataset=inputs.eval,
        processing_class=tokenizer,
        peft_config=lora_config(spec),
        callbacks=callbacks,
    )


def _with_init_adapter(spec: TrainSpec, model: Any) -> tuple[Any, Any]:
    """Continue from an SFT adapter when one is given: TRL then keeps a frozen copy of it as
    the reference (ref_model=None), so the result still applies to the original base."""
    if not spec.init_adapter:
        return model, lora_config(spec)
    if not (Path(spec.init_adapter) / "adapter_config.json").is_file():
        raise TuituneError(
            "init_adapter is not a PEFT adapter directory (no adapter_config.json)",
            path=spec.init_adapter,
            fix="point it at RUN/adapter of a finished LoRA run, or merge it and use the "
            "merged model as the base",
        )
    from peft import PeftModel

    return PeftModel.from_pretrained(model, spec.init_adapter, is_trainable=True), None


def _build_dpo(spec: TrainSpec, run: RunDir, tokenizer: Any, callbacks: list[Any]) -> Any:
    from trl import DPOConfig, DPOTrainer

    inputs = training_view.preference_trainer_inputs(spec, tokenizer)
    kwargs = common_args(spec, run, has_eval=inputs.eval is not None)
    kwargs.update(max_length=spec.max_length, beta=spec.beta)
    kwargs.update(inputs.config_kwargs)
    model, peft_config = _with_init_adapter(spec, load_model(spec))
    return DPOTrainer(
        model=model,
        ref_model=None,
        args=DPOConfig(**kwargs),
        train_dataset=inputs.train,
        eval_dataset=inputs.eval,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _build_reward(spec: TrainSpec, run: RunDir, tokenizer: Any, callbacks: list[Any]) -> Any:
    from trl import RewardConfig, RewardTrainer

    inputs = training_view.preference_trainer_inputs(spec, tokenizer)
    kwargs = common_args(spec, run, has_eval=inputs.eval is not None)
    kwargs.update(max_length=spec.max_length)
    kwargs.update(inputs.config_kwargs)
    model = load_model(spec, sequence_classification=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardTrainer(
        model=model,
        args=RewardConfig(**kwargs),
        train_dataset=inputs.train,
        eval_dataset=inputs.eval,
        processing_class=tokenizer,
        peft_config=lora_config(spec, task_type="SEQ_CLS"),
        callbacks=callbacks,
    )


def _build_grpo(spec: TrainSpec, run: RunDir, tokenizer: Any, callbacks: list[Any]) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    train, evals = grpo_datasets(spec)
    kwargs = common_args(spec, run, has_eval=evals is not None)
    # Every prompt gets num_generations completions; the generation batch must hold whole
    # groups, so the micro-batch is rounded up to a multiple of it.
    g = max(2, spec.num_generations)
    batch = max(spec.per_device_train_batch_size, g)
    batch = -(-batch // g) * g
    kwargs.update(
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        num_generations=g,
        max_completion_length=spec.max_completion_length,
        temperature=1.0,
    )
    model, peft_config = _with_init_adapter(spec, load_model(spec))
    return GRPOTrainer(
        model=model,
        reward_funcs=[reward_function(spec)],
        args=GRPOConfig(**kwargs),
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
