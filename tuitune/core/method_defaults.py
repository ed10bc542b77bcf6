"""Per-method starting values: what each training method should begin from, and whose advice.

One learning rate does not suit every method: 2e-4 is the seeds' LoRA/QLoRA value, ten times
TRL's full-SFT default and two hundred times its DPO/GRPO default. Every value names its
source: the seeds' table (``../shared/seeds/fine-tuning-start-here.txt``, "Safe starting
defaults for QLoRA fine-tuning") where it has one, TRL's config defaults (TRL 1.16:
``SFTConfig``, ``DPOConfig``, ``RewardConfig``, ``GRPOConfig``) where it does not. The plan
applies them to fields the user did not set, marked "method default".
"""

from __future__ import annotations

from typing import Any

from tuitune.core.errors import TuituneError

SEEDS = "the seeds' starting defaults"
_LORA = {
    "learning_rate": (2e-4, f"2e-4 for LoRA/QLoRA ({SEEDS}: higher than full fine-tuning is OK)"),
    "num_train_epochs": (3.0, f"2-3 epochs ({SEEDS}: rarely need more than 3)"),
    "lr_scheduler_type": ("cosine", f"cosine ({SEEDS})"),
    "warmup_ratio": (0.05, f"5% warmup ({SEEDS})"),
    "weight_decay": (0.01, f"0.01 ({SEEDS})"),
    "lora_r": (16, "rank 16: PEFT's common starting rank (8-64 usual)"),
    "lora_alpha": (32, "alpha = 2 x rank, the usual scaling"),
    "lora_dropout": (0.05, "0.05: the usual small adapter dropout"),
}

DEFAULTS: dict[str, dict[str, tuple[Any, str]]] = {
    "lora": dict(_LORA),
    "qlora": {
        **_LORA,
        "optim": ("paged_adamw_8bit", "paged 8-bit AdamW: the QLoRA paper's optimizer"),
    },
    "full": {
        "learning_rate": (
            1e-5,
            "1e-5 for full fine-tuning: every weight moves (TRL's SFTConfig default is 2e-5; "
            "the seeds say lower than LoRA's 2e-4; half TRL's is gentler on forgetting)",
        ),
        "num_train_epochs": (3.0, f"2-3 epochs ({SEEDS})"),
        "lr_scheduler_type": ("cosine", f"cosine ({SEEDS})"),
        "warmup_ratio": (0.05, f"5% warmup ({SEEDS})"),
        "weight_decay": (0.01, f"0.01 ({SEEDS})"),
    },
    "dpo": {
        "learning_rate": (
            1e-6,
            "1e-6: TRL's DPOConfig default (DPO moves a policy that already works; "
            "5e-7 to 5e-6 is the usual range)",
        ),
        "num_train_epochs": (1.0, "1 epoch: preference data overfits fast (TRL's examples)"),
        "beta": (0.1, "beta 0.1: TRL's DPOConfig default"),
        "lr_scheduler_type": ("cosine", "cosine"),
        "warmup_ratio": (0.1, "10% warmup: TRL's DPO examples"),
        "lora_r": (16, "rank 16 adapter on top of the SFT model"),
        "lora_alpha": (32, "alpha = 2 x rank"),
        "lora_dropout": (0.05, "0.05 adapter dropout"),
    },
    "reward": {
        "learning_rate": (1e-4, "1e-4: TRL's RewardConfig default"),
        "num_train_epochs": (
            1.0,
            "1 epoch (TrainingArguments' default is 3; preference pairs overfit fast)",
        ),
        "lora_r": (16, "rank 16 adapter"),
        "lora_alpha": (32, "alpha = 2 x rank"),
        "lora_dropout": (0.05, "0.05 adapter dropout"),
    },
    "grpo": {
        "learning_rate": (1e-6, "1e-6: TRL's GRPOConfig default"),
        "num_train_epochs": (1.0, "1 epoch over the prompts"),
        "num_generations": (
            4,
            "4 completions per prompt (TRL's default is 8; 4 halves generation time and "
            "its KV cache on small machines)",
        ),
        "max_completion_length": (
            128,
            "128 tokens per completion (TRL 1.16's default is 512; short answers need less)",
        ),
        "lora_r": (16, "rank 16 adapter"),
        "lora_alpha": (32, "alpha = 2 x rank"),
        "lora_dropout": (0.05, "0.05 adapter dropout"),
    },
}


def defaults_for(method: str) -> dict[str, tuple[Any, str]]:
    """TrainSpec field -> (value, reason with its source) for ``method``."""
    if method not in DEFAULTS:
        raise TuituneError(f"unknown method {method!r}", fix="one of " + ", ".join(DEFAULTS))
    return dict(DEFAULTS[method])
