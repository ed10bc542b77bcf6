"""Every method for a few real steps on the embedded default model (SmolLM2-135M-Instruct)
with the bundled quickstart data: one slow test, in-process, model loaded per method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.core.paths import assets_dir
from tuitune.core.runs.events import read_events


def _head(src: Path, dst: Path, n: int) -> str:
    dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:n]))
    return str(dst)


@pytest.mark.slow
def test_every_method_trains_on_the_default_model(default_model, tmp_path):
    q = assets_dir() / "quickstart"
    data = {
        "train": _head(q / "train.jsonl", tmp_path / "train.jsonl", 16),
        "eval": "",
        "pref_train": _head(q / "preference.jsonl", tmp_path / "pref.jsonl", 8),
    }
    pref = dict(data_format="preference", train_file=data["pref_train"])
    base = dict(
        max_steps=1,
        save_steps=1,
        max_length=256,
        learning_rate=2e-4,
        eval_file="",
        per_device_train_batch_size=1,
    )
    timings = {}
    sft_adapter = None
    for name, kw in [
        ("lora", dict(max_steps=2, save_steps=2)),
        ("full", dict(method="full", learning_rate=1e-5)),
        ("qlora", dict(method="qlora")),
        ("dpo", dict(method="dpo", **pref)),  # init_adapter filled in below
        ("reward", dict(method="reward", **pref)),
        (
            "grpo",
            dict(
                method="grpo",
                reward_function="json_extract",
                max_steps=1,
                num_generations=2,
                max_completion_length=16,
            ),
        ),
    ]:
        if name == "dpo":
            kw["init_adapter"] = str(sft_adapter)
        spec = make_spec(default_model, data, tmp_path / name, **{**base, **kw})
        rc, run = train(spec)
        events = read_events(run.events)
        assert rc == 0, [e for e in events if e["type"] == "error"]
        steps = [e for e in events if e["type"] == "step"]
        assert steps and all(e["loss"] is not None for e in steps)
        final = events[-1]
        assert final["type"] == "finished"
        timings[name] = round(final["train_runtime"] / final["step"], 2)
        if name == "lora":
            sft_adapter = run.adapter
            assert json.loads((run.adapter / "adapter_config.json").read_text())["r"] == 16
    print("seconds per step on the default model:", timings)
