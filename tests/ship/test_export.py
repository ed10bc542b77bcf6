"""Exports: adapter copy, merged model equal to base + adapter, and configs for TRL's CLI
(parsed by TRL's own TrlParser), Axolotl and LLaMA-Factory (checked against their
documented keys; neither installs here without pulling a different torch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from runner_kit import make_spec, train

from tuitune.cli import main as cli
from tuitune.core.ship.export import axolotl_config, export_run, llamafactory_config, trl_config
from tuitune.core.spec import TrainSpec

# Axolotl: src/axolotl/utils/schemas/{config,peft,training,datasets}.py (AxolotlInputConfig,
# LoraConfig, HyperparametersConfig, SFTDataset) as of 2025/2026.
AXOLOTL_KEYS = {
    "base_model",
    "trust_remote_code",
    "chat_template",
    "sequence_len",
    "sample_packing",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "max_steps",
    "learning_rate",
    "lr_scheduler",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "optimizer",
    "gradient_checkpointing",
    "bf16",
    "fp16",
    "seed",
    "output_dir",
    "logging_steps",
    "save_steps",
    "eval_steps",
    "save_total_limit",
    "datasets",
    "test_datasets",
    "val_set_size",
    "train_on_inputs",
    "adapter",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_target_linear",
    "lora_model_dir",
    "peft_use_dora",
    "load_in_4bit",
    "rl",
    "rl_beta",
    "reward_model",
}
AXOLOTL_DATASET_KEYS = {
    "path",
    "ds_type",
    "split",
    "type",
    "field_messages",
    "roles_to_train",
    "field_chosen",
    "field_rejected",
    "field",
}
# LLaMA-Factory: src/llamafactory/hparams/{model_args,data_args,finetuning_args}.py; the rest
# are transformers' Seq2SeqTrainingArguments (checked against the installed class below).
LLAMAFACTORY_KEYS = {
    "model_name_or_path",
    "adapter_name_or_path",
    "trust_remote_code",
    "quantization_bit",
    "quantization_method",
    "double_quantization",
    "template",
    "dataset",
    "eval_dataset",
    "dataset_dir",
    "cutoff_len",
    "train_on_prompt",
    "packing",
    "stage",
    "finetuning_type",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target",
    "use_dora",
    "pref_beta",
    "pref_loss",
    "disable_gradient_checkpointing",
    # transformers 4.x TrainingArguments (LLaMA-Factory's supported range; 5.x folded it
    # into warmup_steps), as in LLaMA-Factory's examples/train_lora/*.yaml.
    "warmup_ratio",
}


@pytest.fixture(scope="module")
def lora_run(tiny_model, data, tmp_path_factory):  # noqa: F811
    rc, run = train(
        make_spec(
            tiny_model,
            data,
            tmp_path_factory.mktemp("exp") / "run",
            max_steps=2,
            learning_rate=5e-2,
        )
    )
    assert rc == 0
    return run


def test_adapter_and_merged_exports(lora_run, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert cli(["export", str(lora_run.root), "-f", "adapter", "-f", "merged"]) == 0
    out = capsys.readouterr().out
    adapter, merged = lora_run.exports / "adapter", lora_run.exports / "merged"
    assert f"merged: {merged}" in out
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (merged / "model.safetensors").is_file() and not (
        merged / "adapter_config.json"
    ).exists()
    tok = AutoTokenizer.from_pretrained(merged)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    spec = TrainSpec.load(lora_run.spec)
    ids = tok("Ada is 36, lives in Oslo.", return_tensors="pt").input_ids
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(spec.model)
        plain = base(ids).logits
        expected = PeftModel.from_pretrained(base, str(lora_run.adapter))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-4)  # the adapter changed something
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _trl_parse(path: Path, config_cls):
    from trl import ModelConfig, ScriptArguments, TrlParser
    from trl.scripts.utils import DatasetMixtureConfig

    parser = TrlParser((ScriptArguments, config_cls, ModelConfig, DatasetMixtureConfig))
    return parser.parse_args_and_config(args=["--config", str(path)])


def test_trl_config_parses_with_trls_own_parser(lora_run, tmp_path):
    from trl import DPOConfig, SFTConfig

    path = export_run(lora_run, "trl", tmp_path)
    assert path.read_text().startswith("# TRL CLI config exported by tuitune. Run: trl sft")
    script, cfg, model, mixture = _trl_parse(path, SFTConfig)[:4]
    spec = TrainSpec.load(lora_run.spec)
    assert model.use_peft and model.lora_r == spec.lora_r and model.model_name_or_path == spec.model
    assert cfg.max_steps == 2 and cfg.learning_rate == spec.learning_rate
    assert mixture.datasets[0].data_files == spec.train_file
    dpo = dataclasses.replace(spec, method="dpo", data_format="preference", beta=0.2)
    (tmp_path / "dpo.yaml").write_text(yaml.safe_dump(trl_config(dpo)))
    assert _trl_parse(tmp_path / "dpo.yaml", DPOConfig)[1].beta == 0.2


@pytest.mark.parametrize("method", ["lora", "qlora", "full", "dpo"])
def test_axolotl_yaml_uses_documented_keys(lora_run, tmp_path, method):
    spec = TrainSpec.load(lora_run.spec).replace(
        method=method, data_format="preference" if method == "dpo" else "messages"
    )
    cfg = axolotl_config(spec)
    assert set(cfg) <= AXOLOTL_KEYS, set(cfg) - AXOLOTL_KEYS
    for d in cfg["datasets"] + cfg.get("test_datasets", []):
        assert set(d) <= AXOLOTL_DATASET_KEYS
    assert cfg["base_model"] == spec.model and cfg["sequence_len"] == spec.max_length
    if method == "qlora":
        assert cfg["adapter"] == "qlora" and cfg["load_in_4bit"] is True
    if method == "full":
        assert "adapter" not in cfg
    if method == "dpo":
        assert cfg["rl"] == "dpo" and cfg["rl_beta"] == spec.beta
    path = export_run(lora_run, "axolotl", tmp_path)
    assert yaml.safe_load(path.read_text())["lora_target_linear"] is True


def test_llamafactory_yaml_uses_documented_keys(lora_run, tmp_path):
    from transformers import Seq2SeqTrainingArguments

    hf_keys = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    path = export_run(lora_run, "llamafactory", tmp_path)
    cfg = yaml.safe_load(path.read_text())
    unknown = set(cfg) - LLAMAFACTORY_KEYS - hf_keys
    assert not unknown, unknown
    assert (
        cfg["stage"] == "sft" and cfg["finetuning_type"] == "lora" and cfg["lora_target"] == "all"
    )
    assert cfg["template"] == "chatml"
    info = json.loads((Path(cfg["dataset_dir"]) / "dataset_info.json").read_text())
    assert info["tuitune_train"]["formatting"] == "sharegpt"
    rows = (Path(cfg["dataset_dir"]) / "tuitune_train.jsonl").read_text().splitlines()
    assert len(rows) == 40 and json.loads(rows[0])["messages"][-1]["role"] == "assistant"
    spec = TrainSpec.load(lora_run.spec).replace(method="qlora")
    q = llamafactory_config(spec, tmp_path)
    assert q["quantization_bit"] == 4 and set(q) - LLAMAFACTORY_KEYS - hf_keys == set()


def test_export_before_finish_is_one_line(tiny_model, data, tmp_path, capsys):  # noqa: F811
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "spec.json").write_text(make_spec(tiny_model, data, run_dir).to_json())
    assert cli(["export", str(run_dir), "-f", "merged"]) == 2
    assert "no saved result yet" in capsys.readouterr().err


def test_exports_refuse_to_replace_an_existing_output_without_force(lora_run, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "precious.txt").write_text("someone's model")
    assert cli(["export", str(lora_run.root), "-f", "adapter", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert (out / "adapter" / "precious.txt").read_text() == "someone's model"
    assert cli(["export", str(lora_run.root), "-f", "adapter", "--out", str(out), "--force"]) == 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not (out / "adapter" / "precious.txt").exists()
    assert not list(out.glob(".adapter.*"))  # no temp or old copy left beside it
    from tuitune.core.atomic import default_file_mode

    plain = default_file_mode()  # what open() gives: 0644 under umask 022, not mkstemp's 0600
    assert (out / "adapter" / "adapter_config.json").stat().st_mode & 0o777 == plain
    cfg = tmp_path / "cfg"
    assert cli(["export", str(lora_run.root), "-f", "trl", "--out", str(cfg)]) == 0
    assert (cfg / "trl.yaml").stat().st_mode & 0o777 == plain
    assert not lora_run.run_json.exists() or (lora_run.run_json.stat().st_mode & 0o777) == plain
    assert cli(["export", str(lora_run.root), "-f", "trl", "--out", str(cfg)]) == 2


def test_swap_in_keeps_a_whole_output_at_every_moment(tmp_path, monkeypatch):
    """A crash between the two renames leaves the old output whole beside the target."""
    import os as _os

    from tuitune.core.atomic import swap_in

    final, new = tmp_path / "adapter", tmp_path / ".adapter.tmp"
    final.mkdir()
    (final / "w").write_text("old")
    new.mkdir()
    (new / "w").write_text("new")
    real = _os.replace
    calls = []

    def crash_on_second(src, dst):  # noqa: ANN001
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("power cut")
        return real(src, dst)

    monkeypatch.setattr(_os, "replace", crash_on_second)
    with pytest.raises(OSError):
        swap_in(new, final)
    monkeypatch.setattr(_os, "replace", real)
    (old,) = tmp_path.glob(".adapter.old-*")
    assert (old / "w").read_text() == "old" and (new / "w").read_text() == "new"
    swap_in(new, final)
    assert (final / "w").read_text() == "new" and not list(tmp_path.glob(".adapter.old-*"))
