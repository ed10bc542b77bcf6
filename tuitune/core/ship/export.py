"""Exports of a finished run: the adapter, a merged model, and the run's settings as configs
for the tools people move to at scale (TRL CLI, Axolotl, LLaMA-Factory).

Config files carry only keys those projects document (TRL: ``ScriptArguments`` +
``DatasetMixtureConfig`` + the trainer config + ``ModelConfig``; Axolotl:
``src/axolotl/utils/schemas``; LLaMA-Factory: ``src/llamafactory/hparams``). Paths in them
are absolute, so the file works from any directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tuitune.core.atomic import refuse_existing, swap_in, write_json_atomic, write_text_atomic
from tuitune.core.data.training_view import read_jsonl
from tuitune.core.errors import TuituneError
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec

FORMATS = ("adapter", "merged", "trl", "axolotl", "llamafactory")

_TRL_COMMAND = {
    "full": "sft",
    "lora": "sft",
    "qlora": "sft",
    "dpo": "dpo",
    "reward": "reward",
    "grpo": "grpo",
}
_LF_STAGE = {
    "full": "sft",
    "lora": "sft",
    "qlora": "sft",
    "dpo": "dpo",
    "reward": "rm",
    "grpo": "ppo",
}


def _finished_result(run: RunDir) -> Path:
    if not run.adapter.is_dir():
        raise TuituneError(
            "this run has no saved result yet",
            path=run.adapter,
            fix="finish it first (tuitune resume RUN)",
        )
    return run.adapter


def _swap_in(tmp: Path, final: Path) -> Path:
    """Whole old or whole new at ``final`` at every moment (core.atomic.swap_in)."""
    return swap_in(tmp, final)


def export_adapter(run: RunDir, out: Path | None = None, *, force: bool = False) -> Path:
    """Copy the run's adapter (with tokenizer and chat template) to ``exports/adapter``;
    an existing output is replaced only with ``force``."""
    src = _finished_result(run)
    final = out or run.exports / "adapter"
    refuse_existing(final, force=force)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    return _swap_in(tmp, final)


def merge_adapter(
    run: RunDir, out: Path | None = None, *, dtype: str = "auto", force: bool = False
) -> Path:
    """Merge the LoRA adapter into its base and save safetensors + tokenizer + chat template.

    QLoRA adapters are merged into the unquantized base (the usual way: a merge into 4-bit
    weights would lose precision). Full fine-tunes are already whole models and are copied.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _finished_result(run)
    spec = TrainSpec.load(run.spec)
    final = out or run.exports / "merged"
    refuse_existing(final, force=force)  # before minutes of merging, not after
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if not (src / "adapter_config.json").is_file():
        shutil.copytree(src, tmp)
        return _swap_in(tmp, final)
    if spec.method == "reward":
        raise TuituneError("reward models are exported as adapters", fix="use --format adapter")
    from peft import PeftModel

    torch_dtype = {
        "auto": "auto",
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[dtype]
    base = AutoModelForCausalLM.from_pretrained(
        spec.model, dtype=torch_dtype, trust_remote_code=spec.trust_remote_code
    )
    model = PeftModel.from_pretrained(base, str(src)).merge_and_unload()
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=spec.trust_remote_code)
    tokenizer.save_pretrained(tmp)
    return _swap_in(tmp, final)


# --- configs ----------------------------------------------------------------------------------


def _targets(spec: TrainSpec) -> list[str] | str:
    t = list(spec.lora_target_modules)
    return "all-linear" if t == ["all-linear"] else t


def _save_steps(spec: TrainSpec) -> int | float:
    return spec.save_steps or 0.2


def trl_config(spec: TrainSpec) -> dict[str, Any]:
    """A config for ``trl sft|dpo|reward|grpo --config FILE`` (TRL's own CLI)."""
    cfg: dict[str, Any] = {
        "model_name_or_path": spec.model,
        "trust_remote_code": spec.trust_remote_code,
        "datasets": [{"path": "json", "data_files": spec.train_file, "split": "train"}],
        "output_dir": str(Path(spec.output_dir or ".") / "trl"),
        "seed": spec.seed,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "lr_scheduler_type": spec.lr_scheduler_type,
        "warmup_steps": spec.warmup_ratio,
        "weight_decay": spec.weight_decay,
        "max_grad_norm": spec.max_grad_norm,
        "optim": spec.optim if spec.method != "qlora" else "paged_adamw_8bit",
        "gradient_checkpointing": spec.gradient_checkpointing,
        "bf16": spec.bf16,
        "fp16": spec.fp16,
        "logging_steps": spec.logging_steps,
        "save_steps": _save_steps(spec),
        "save_total_limit": spec.save_total_limit,
        "report_to": list(spec.report_to) or "none",
    }
    if spec.method != "grpo":
        cfg["max_length"] = spec.max_length
    if spec.method in ("full", "lora", "qlora"):
        cfg["packing"] = spec.packing
        cfg["completion_only_loss"] = spec.completion_only_loss
    if spec.method == "dpo":
        cfg["beta"] = spec.beta
    if spec.method == "grpo":
        cfg["num_generations"] = spec.num_generations
        cfg["max_completion_length"] = spec.max_completion_length
    if spec.uses_peft:
        cfg.update(
            use_peft=True,
            lora_r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            use_dora=spec.use_dora,
        )
        targets = _targets(spec)
        cfg["lora_target_modules"] = [targets] if isinstance(targets, str) else targets
        if spec.method == "reward":
            cfg["lora_task_type"] = "SEQ_CLS"
    if spec.method == "qlora" or spec.load_in_4bit:
        cfg.update(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            use_bnb_nested_quant=True,
            dtype="bfloat16",
        )
    if spec.eval_file:
        cfg["eval_strategy"] = "steps"
        cfg["eval_steps"] = spec.eval_steps or 0.1
    return cfg


def axolotl_config(spec: TrainSpec) -> dict[str, Any]:
    """An Axolotl YAML (``axolotl train FILE``) with the same model, data and recipe."""
    cfg: dict[str, Any] = {
        "base_model": spec.model,
        "trust_remote_code": spec.trust_remote_code,
        "chat_template": "tokenizer_default",
        "sequence_len": spec.max_length,
        "sample_packing": spec.packing,
        "micro_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "num_epochs": spec.num_train_epochs,
        "learning_rate": spec.learning_rate,
        "lr_scheduler": spec.lr_scheduler_type,
        "warmup_ratio": spec.warmup_ratio,
        "weight_decay": spec.weight_decay,
        "max_grad_norm": spec.max_grad_norm,
        "optimizer": "paged_adamw_8bit" if spec.method == "qlora" else spec.optim,
        "gradient_checkpointing": spec.gradient_checkpointing,
        "bf16": spec.bf16,
        "fp16": spec.fp16,
        "seed": spec.seed,
        "output_dir": str(Path(spec.output_dir or ".") / "axolotl"),
        "logging_steps": spec.logging_steps,
        "save_total_limit": spec.save_total_limit,
    }
    if spec.max_steps > 0:
        cfg["max_steps"] = spec.max_steps
    if spec.save_steps:
        cfg["save_steps"] = spec.save_steps
    if spec.eval_steps:
        cfg["eval_steps"] = spec.eval_steps
    dataset: dict[str, Any] = {"path": spec.train_file, "ds_type": "json", "split": "train"}
    if spec.method == "dpo":
        cfg["rl"] = "dpo"
        cfg["rl_beta"] = spec.beta
        dataset.update(
            type="chat_template.default",
            field_messages="prompt",
            field_chosen="chosen",
            field_rejected="rejected",
        )
    elif spec.method == "grpo":
        cfg["rl"] = "grpo"
        dataset.update(type="chat_template", field_messages="messages")
    elif spec.method == "reward":
        cfg["reward_model"] = True
        dataset.update(type="bradley_terry.chat_template")
    elif spec.data_format == "messages":
        dataset.update(
            type="chat_template", field_messages="messages", roles_to_train=["assistant"]
        )
        cfg["train_on_inputs"] = not spec.completion_only_loss
    elif spec.data_format == "prompt_completion":
        dataset.update(
            type={
                "field_instruction": "prompt",
                "field_output": "completion",
                "format": "{instruction}",
                "no_input_format": "{instruction}",
            }
        )
        cfg["train_on_inputs"] = not spec.completion_only_loss
    elif spec.data_format == "input_output":  # the curated rows are Axolotl's own segments
        dataset.update(type="input_output")
        cfg["train_on_inputs"] = not spec.completion_only_loss
    else:
        dataset.update(type="completion", field="text")
    cfg["datasets"] = [dataset]
    if spec.eval_file:
        cfg["test_datasets"] = [{**dataset, "path": spec.eval_file}]
    else:
        cfg["val_set_size"] = 0.0
    if spec.uses_peft:
        cfg["adapter"] = "qlora" if spec.method == "qlora" else "lora"
        cfg.update(
            lora_r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            peft_use_dora=spec.use_dora,
        )
        targets = _targets(spec)
        if targets == "all-linear":
            cfg["lora_target_linear"] = True
        else:
            cfg["lora_target_modules"] = targets
        if spec.init_adapter:
            cfg["lora_model_dir"] = spec.init_adapter
    if spec.method == "qlora" or spec.load_in_4bit:
        cfg["load_in_4bit"] = True
    return cfg


def _lf_template(model: str) -> str:
    """LLaMA-Factory template name: ChatML-style models get ``chatml``, others ``default``."""
    try:
        cfg = json.loads((Path(model) / "tokenizer_config.json").read_text(encoding="utf-8"))
        template = cfg.get("chat_template") or ""
        jinja = Path(model) / "chat_template.jinja"
        if not template and jinja.is_file():
            template = jinja.read_text(encoding="utf-8")
    except (OSError, ValueError):
        template = ""
    return "chatml" if "<|im_start|>" in str(template) else "default"


def llamafactory_config(spec: TrainSpec, dataset_dir: Path) -> dict[str, Any]:
    """A LLaMA-Factory YAML (``llamafactory-cli train FILE``); its datasets are declared in
    ``dataset_dir/dataset_info.json`` (written by :func:`write_llamafactory`)."""
    cfg: dict[str, Any] = {
        "model_name_or_path": spec.model,
        "trust_remote_code": spec.trust_remote_code,
        "stage": _LF_STAGE[spec.method],
        "do_train": True,
        "finetuning_type": "lora" if spec.uses_peft else "full",
        "dataset": "tuitune_train",
        "dataset_dir": str(dataset_dir),
        "template": _lf_template(spec.model),
        "cutoff_len": spec.max_length,
        "packing": spec.packing,
        "output_dir": str(Path(spec.output_dir or ".") / "llamafactory"),
        "logging_steps": spec.logging_steps,
        "save_steps": spec.save_steps or 500,
        "save_total_limit": spec.save_total_limit,
        "per_device_train_batch_size": spec.per_device_train_batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_train_epochs,
        "max_steps": spec.max_steps,
        "lr_scheduler_type": spec.lr_scheduler_type,
        "warmup_ratio": spec.warmup_ratio,
        "weight_decay": spec.weight_decay,
        "max_grad_norm": spec.max_grad_norm,
        "optim": "paged_adamw_8bit" if spec.method == "qlora" else spec.optim,
        "bf16": spec.bf16,
        "fp16": spec.fp16,
        "seed": spec.seed,
        "disable_gradient_checkpointing": not spec.gradient_checkpointing,
        "report_to": list(spec.report_to) or "none",
    }
    if spec.method in ("full", "lora", "qlora"):
        cfg["train_on_prompt"] = not spec.completion_only_loss
    if spec.uses_peft:
        targets = _targets(spec)
        cfg.update(
            lora_rank=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            use_dora=spec.use_dora,
            lora_target="all" if targets == "all-linear" else ",".join(targets),
        )
        if spec.init_adapter:
            cfg["adapter_name_or_path"] = spec.init_adapter
    if spec.method == "qlora" or spec.load_in_4bit:
        cfg.update(quantization_bit=4, quantization_method="bnb", double_quantization=True)
    if spec.method == "dpo":
        cfg.update(pref_beta=spec.beta, pref_loss="sigmoid")
    if spec.eval_file:
        cfg.update(
            eval_dataset="tuitune_eval",
            eval_strategy="steps",
            eval_steps=spec.eval_steps or 100,
            per_device_eval_batch_size=spec.per_device_train_batch_size,
        )
    return cfg


def _lf_rows(path: str, spec: TrainSpec) -> list[dict[str, Any]]:
    """Rows in LLaMA-Factory's sharegpt layout (messages; ranking rows add chosen/rejected)."""
    out = []
    for row in read_jsonl(path):
        if spec.data_format == "preference":
            prompt = row["prompt"]
            msgs = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]

            def last(x: Any) -> dict[str, str]:
                return x[-1] if isinstance(x, list) else {"role": "assistant", "content": x}

            out.append(
                {"messages": msgs, "chosen": last(row["chosen"]), "rejected": last(row["rejected"])}
            )
        elif "messages" in row:
            out.append({"messages": row["messages"]})
        elif "prompt" in row:
            p, c = row["prompt"], row["completion"]
            msgs = p if isinstance(p, list) else [{"role": "user", "content": p}]
            msgs = msgs + (c if isinstance(c, list) else [{"role": "assistant", "content": c}])
            out.append({"messages": msgs})
        else:
            out.append({"text": row["text"]})
    return out


def write_llamafactory(spec: TrainSpec, out_dir: Path) -> Path:
    """``out_dir/llamafactory.yaml`` plus ``out_dir/data`` (dataset_info.json + JSONL)."""
    data_dir = out_dir / "data"
    info: dict[str, Any] = {}
    for name, path in (("tuitune_train", spec.train_file), ("tuitune_eval", spec.eval_file)):
        if not path:
            continue
        rows = _lf_rows(path, spec)
        write_text_atomic(
            data_dir / f"{name}.jsonl",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
        )
        entry: dict[str, Any] = {"file_name": f"{name}.jsonl"}
        if "text" in rows[0]:
            entry["columns"] = {"prompt": "text"}
        else:
            entry["formatting"] = "sharegpt"
            entry["columns"] = {"messages": "messages"}
            entry["tags"] = {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            }
            if spec.data_format == "preference":
                entry["ranking"] = True
                entry["columns"].update(chosen="chosen", rejected="rejected")
        info[name] = entry
    write_json_atomic(data_dir / "dataset_info.json", info)
    cfg = llamafactory_config(spec, data_dir)
    return write_text_atomic(
        out_dir / "llamafactory.yaml", _yaml(cfg, "LLaMA-Factory", "llamafactory-cli train")
    )


def _yaml(cfg: dict[str, Any], tool: str, command: str) -> str:
    import yaml

    head = f"# {tool} config exported by tuitune. Run: {command} <this file>\n"
    return head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def export_run(run: RunDir, fmt: str, out: Path | None = None, *, force: bool = False) -> Path:
    """Export ``run`` as ``fmt`` (one of FORMATS); returns the file or directory written.
    An existing output is never replaced without ``force``."""
    if fmt not in FORMATS:
        raise TuituneError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    if fmt == "adapter":
        return export_adapter(run, out, force=force)
    if fmt == "merged":
        return merge_adapter(run, out, force=force)
    spec = TrainSpec.load(run.spec)
    target = out or run.exports
    if spec.data_format == "input_output" and fmt in ("trl", "llamafactory"):
        raise TuituneError(
            f"{fmt} has no form for input_output data (labelled segments trained without a "
            "chat template): the config would train other tokens",
            fix="export -f axolotl (its type: input_output reads the curated segments as they "
            "are), or -f adapter / merged for the trained model",
        )
    if fmt == "trl":
        command = f"trl {_TRL_COMMAND[spec.method]} --config"
        refuse_existing(target / "trl.yaml", force=force)
        return write_text_atomic(target / "trl.yaml", _yaml(trl_config(spec), "TRL CLI", command))
    if fmt == "axolotl":
        refuse_existing(target / "axolotl.yaml", force=force)
        return write_text_atomic(
            target / "axolotl.yaml", _yaml(axolotl_config(spec), "Axolotl", "axolotl train")
        )
    refuse_existing(target / "llamafactory", force=force)
    return write_llamafactory(spec, target / "llamafactory")
