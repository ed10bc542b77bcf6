"""The GPU proof script stays runnable: its dry run builds every configuration on the CPU.

``benchmarks/gpu_proof.py`` is run once on a lent GPU machine; these tests keep it from rotting
between loans. The fast test builds every session, plan and tiny stand-in model and checks the
tables; the slow one also replays the sessions the dry run launches (a packed LoRA row and the
OOM session, whose long example must land at the step the GPU run expects).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_proof.py"


def _run(tmp_path: Path, *extra: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--seed", "11", "--work", str(tmp_path / "w"),
         "--out", str(out), *extra],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout,
    )  # fmt: skip
    report_file = out / "gpu_proof-all-dry.json"
    assert report_file.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(report_file.read_text())


def test_dry_run_builds_every_configuration(tmp_path: Path) -> None:
    proc, report = _run(tmp_path, "--no-launch", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rows = report["memory"]["rows"]
    ids = {r["row"]["id"] for r in rows}
    assert len(rows) >= 18 and sum(r["row"]["random"] for r in rows) == 4
    methods = {r["row"]["method"] for r in rows}
    assert methods >= {"full", "lora", "dora", "qlora", "dpo", "grpo"}
    archs = {r["row"]["arch"].split("-")[0] for r in rows}
    assert archs >= {"SmolLM2", "Qwen2.5", "Llama", "Gemma", "Mistral"}
    assert {r["row"]["seq"] for r in rows} >= {512, 4096}
    assert {1, 16} <= {r["row"]["micro"] for r in rows}
    assert {True, False} == {r["row"]["ckpt"] for r in rows} == {r["row"]["pack"] for r in rows}
    for r in rows:  # every row planned for the real architecture, on the GPU
        assert r["predicted"]["reserved"] > 0, r
        assert "plan_error" not in r["predicted"], r["predicted"]["plan_error"]
    by_id = {r["row"]["id"]: r for r in rows}
    # a real 8B QLoRA needs several GiB, a 135M LoRA far less: the plan saw the real config
    assert by_id["r14"]["predicted"]["reserved"] > 4 * by_id["r02"]["predicted"]["reserved"]
    assert "r01" in ids and all(r["result"]["status"].startswith("built only") for r in rows)
    speed = {c["case"]: c for c in report["speed"]}
    assert set(speed) == {"qwen05-lora", "llama1b-full", "qwen7b-qlora"}
    assert all("built only" in c["status"] for c in speed.values())
    # the same seed draws the same random rows, and the table names them
    md = (tmp_path / "out" / "gpu_proof-all-dry.md").read_text()
    assert "seed 11" in md and "| x01 |" in md
    assert report["env"]["imports"]["missing"] == []


@pytest.mark.slow
def test_dry_run_replays_and_places_the_oom_row(tmp_path: Path) -> None:
    proc, report = _run(tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    launched = [r for r in report["memory"]["rows"] if r["result"]["status"] == "finished"]
    assert [r["row"]["id"] for r in launched] == ["r02"]
    assert launched[0]["result"]["steps"] == 2
    assert launched[0]["result"]["launched"]["packing"] is True
    oom = report["oom"]
    assert oom["placement_ok"], oom
    assert oom["final"] == "finished"
