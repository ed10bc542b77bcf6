"""One orchestration for both front ends: the same session through the wizard (Pilot) and
through ``tuitune replay`` trains the same spec.json and reports the same figures, full SFT
included (both evaluate the tuned model against its base through one core function)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("textual")

from tuitune.core.hardware.probe import FakeNVML  # noqa: E402
from tuitune.core.runs.rundir import RunDir  # noqa: E402
from tuitune.core.session import load_session  # noqa: E402
from tuitune.core.spec import TrainSpec  # noqa: E402
from tuitune.core.training.plan import planned_fields  # noqa: E402
from tuitune.replay import replay  # noqa: E402
from tuitune.tui.app import TuituneApp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "assets" / "quickstart"


def _session(tmp_path: Path, model: Path, method: str) -> Path:
    train = QUICK.joinpath("train.jsonl").read_text().splitlines()[:24]
    evals = QUICK.joinpath("eval.jsonl").read_text().splitlines()[:4]
    (tmp_path / "train.jsonl").write_text("\n".join(train) + "\n")
    (tmp_path / "eval.jsonl").write_text("\n".join(evals) + "\n")
    data = {
        "schema_version": 1,
        "model": {"ref": str(model)},
        "data": {"train": ["train.jsonl"], "val_ratio": 0.0},
        "evaluation": {"task": "json_extract", "eval_file": "eval.jsonl", "max_new_tokens": 8},
        "spec": {"method": method, "max_steps": 2, "save_steps": 2, "seed": 7},
    }
    p = tmp_path / "session.json"
    p.write_text(json.dumps(data, indent=2))
    return p


async def _wizard(session_path: Path) -> tuple[RunDir, list[tuple[str, ...]]]:
    app = TuituneApp(
        load_session(session_path), start_step="train", probe_kwargs={"nvml": FakeNVML([])}
    )
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_training()
        for _ in range(1200):
            await pilot.pause(0.25)
            if app.run_view is not None and app.run_view.final is not None:
                break
        assert app.run_view is not None and app.run_view.finished, (
            app.run_view and app.run_view.final
        )
        app.start_evaluation()
        for _ in range(1200):
            await pilot.pause(0.25)
            if app.eval_results is not None:
                break
        assert app.eval_results is not None, app.eval_status
        return app.run_view.run, app.eval_results.rows


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "full"])
def test_wizard_and_replay_train_and_report_the_same(
    method: str, tmp_path: Path, tiny_model
) -> None:
    session = _session(tmp_path, tiny_model, method)
    replayed = replay(session, out=tmp_path / "replay-run")
    run, rows = asyncio.run(_wizard(session))
    a, b = TrainSpec.load(replayed.run.spec), TrainSpec.load(run.spec)
    assert planned_fields(a) == planned_fields(b)
    assert a.method == method and a.model == b.model
    # the same before/after figures: the full-SFT model is scored against its base too
    assert rows == replayed.rows and rows
