"""Validation in one place: every bad value is refused before any data preparation, in one
line naming the session file, the field and the fix, and nothing the user gave is touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.spec import (
    ATTENTION,
    OPTIMIZERS,
    SCHEDULERS,
    TrainSpec,
    field_problem,
    parse_set,
    parse_value,
)
from tuitune.replay import replay


def _write(tmp_path: Path, model: Path, *, spec: dict, rows: list[dict], **extra) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    session = {
        "schema_version": 1,
        "model": {"ref": str(model)},
        "data": {"train": ["d.jsonl"]},
        "spec": {"max_steps": 2, **spec},
        **extra,
    }
    p = tmp_path / "session.json"
    p.write_text(json.dumps(session, indent=2).replace('"__NaN__"', "NaN"))
    return p


SFT = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(8)]
PREF = [{"prompt": f"q{i}", "chosen": f"a{i}", "rejected": f"b{i}"} for i in range(8)]
TEXT = [{"text": f"document number {i} about nothing much"} for i in range(8)]

CASES = {
    "lora_r -8": ({"lora_r": -8}, SFT, {}, "lora_r"),
    "learning_rate NaN": ({"learning_rate": "__NaN__"}, SFT, {}, "learning_rate"),
    "max_steps 0": ({"max_steps": 0}, SFT, {}, "max_steps"),
    "unknown optimizer": ({"optim": "adam_fastest"}, SFT, {}, "optim"),
    "unknown target module": ({"lora_target_modules": ["q_proj", "wq"]}, SFT, {}, "wq"),
    "unknown task": ({}, SFT, {"evaluation": {"task": "no_such_task"}}, "evaluation.task"),
    "DPO on SFT data": ({"method": "dpo"}, SFT, {}, "preference pairs"),
    "SFT on preference data": ({"method": "lora"}, PREF, {}, "preference pairs"),
    "max_length over the context": ({"max_length": 4096}, SFT, {}, "context of 512"),
    "bf16 and fp16": ({"bf16": True, "fp16": True}, SFT, {}, "fp16"),
    "a task scoring text rows": ({}, TEXT, {"evaluation": {"task": "exact_match"}}, "eval_file"),
}


def _digest(*paths: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_session_refused_before_any_work(case: str, tmp_path: Path, tiny_model) -> None:
    spec, rows, extra, needle = CASES[case]
    p = _write(tmp_path, tiny_model, spec=spec, rows=rows, **extra)
    before = _digest(p, tmp_path / "d.jsonl")
    out = tmp_path / "run"
    t0 = time.perf_counter()
    with pytest.raises(TuituneError) as info:
        replay(p, out=out)
    elapsed = time.perf_counter() - t0
    text = str(info.value)
    assert str(p) in text and needle in text and "fix:" in text, text
    assert len(text.splitlines()) == 1
    assert not out.exists()  # no run directory: nothing was prepared
    assert _digest(p, tmp_path / "d.jsonl") == before
    assert elapsed < 2.0, f"{case}: {elapsed:.2f}s"


def test_cli_refuses_in_one_line_with_exit_2_under_2s(tmp_path: Path, tiny_model) -> None:
    p = _write(tmp_path, tiny_model, spec={"lora_r": -8}, rows=SFT)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tuitune", "replay", str(p), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0] and "lora_r" in err[0], proc.stderr
    assert elapsed < 2.0 + 1.0, elapsed  # 2 s for the check, plus interpreter start-up


def test_set_values_are_typed_and_range_checked() -> None:
    with pytest.raises(TuituneError, match="learning_rate.*not a number"):
        parse_set(["learning_rate=fast"])
    with pytest.raises(TuituneError, match="lora_r.*>= 1"):
        parse_set(["lora_r=-8"])
    with pytest.raises(TuituneError, match="bad --set"):
        parse_set(["no_such_field=1"])
    got = parse_set(["learning_rate=1e-4", "packing=true", "lora_target_modules=q_proj,v_proj"])
    assert got == {
        "learning_rate": 1e-4,
        "packing": True,
        "lora_target_modules": ["q_proj", "v_proj"],
    }
    assert parse_value("max_steps", "-1") == -1


def test_cli_set_learning_rate_fast_is_refused(tmp_path: Path, tiny_model) -> None:
    p = _write(tmp_path, tiny_model, spec={}, rows=SFT)
    proc = subprocess.run(
        [sys.executable, "-m", "tuitune", "plan", str(p), "--set", "learning_rate=fast"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert proc.returncode == 2 and "learning_rate" in proc.stderr and "fast" in proc.stderr


def test_every_default_obeys_its_own_rule() -> None:
    spec = TrainSpec()
    for name, value in spec.to_dict().items():
        assert field_problem(name, value) is None, name


def test_bundled_names_match_the_installed_libraries() -> None:
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    assert set(OPTIMIZERS) == {o.value for o in OptimizerNames}
    assert set(SCHEDULERS) == {s.value for s in SchedulerType}
    from transformers import AttentionInterface

    registered = set(AttentionInterface._global_mapping) | {"sdpa", "eager"}
    assert set(ATTENTION) - {""} <= registered
