"""Build the TRL trainer a TrainSpec asks for: SFT (full, LoRA, QLoRA), DPO, reward, GRPO.

Everything here is a thin mapping from spec fields onto TRL / PEFT / transformers objects;
the training itself is theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.rundir import RunDir
from tuitune.core.spec import TrainSpec

# Fraction of the run between evaluations / checkpoints when the spec says 0 (auto):
# Trainer reads a float in [0, 1) as a ratio of the total steps.
AUTO_EVAL_RATIO = 0.1
AUTO_SAVE_RATIO = 0.2


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def load_tokenizer(spec: TrainSpec) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.model, trust_remote_code=spec.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def quantization_config(spec: TrainSpec) -> Any:
    """QLoRA's recipe: nf4 weights, double quantization, bf16 compute."""
    if spec.method != "qlora" and not spec.load_in_4bit:
        return None
    import torch
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
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_model(spec: TrainSpec, *, sequence_classification: bool = False) -> Any:
    """The base model from ``spec.model`` (a local directory), quantized for QLoRA."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    quant = quantization_config(spec)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["dtype"] = torch.bfloat16
        if cuda_available():
            import os

            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    elif spec.bf16:
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.float32
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    if sequence_classification:
        model = AutoModelForSequenceClassification.from_pretrained(
            spec.model, num_labels=1, **kwargs
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(spec.model, **kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=spec.gradient_checkpointing
        )
    return model


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
        bf16=spec.bf16 and not use_cpu,
        fp16=spec.fp16 and not use_cpu,
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
    )


def _data_view() -> Any:
    try:
        from tuitune.core.data import training_view
    except ImportError as e:
        raise TuituneError(f"the data module is missing: {e}", fix="reinstall tuitune") from None
    return training_view


def build_trainer(spec: TrainSpec, run: RunDir, callbacks: list[Any]) -> tuple[Any, Any]:
    """(trainer, tokenizer) for ``spec``; the model is loaded here."""
    if not spec.model or not Path(spec.model).is_dir():
        raise TuituneError(
            "the model directory does not exist",
            path=spec.model or "spec.model",
            fix="resolve the model before launching (tuitune.core.models.resolve_model)",
        )
    tokenizer = load_tokenizer(spec)
    builder = {
        "full": _build_sft,
        "lora": _build_sft,
        "qlora": _build_sft,
        "dpo": _build_dpo,
        "reward": _build_reward,
        "grpo": _build_grpo,
    }[spec.method]
    return builder(spec, run, tokenizer, callbacks), tokenizer


def _build_sft(spec: TrainSpec, run: RunDir, tokenizer: Any, callbacks: list[Any]) -> Any:
    from trl import SFTConfig, SFTTrainer

    inputs = _data_view().sft_trainer_inputs(spec, tokenizer)
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

    inputs = _data_view().preference_trainer_inputs(spec, tokenizer)
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

    inputs = _data_view().preference_trainer_inputs(spec, tokenizer)
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

    from tuitune.runner.rewards import grpo_datasets, reward_function

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
