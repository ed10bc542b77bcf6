"""The session's data.columns maps a file's columns the way `data check --columns` does."""

from __future__ import annotations

import json
from pathlib import Path

from tuitune.core.models.resolve import ResolvedModel
from tuitune.core.session import Session, load_session
from tuitune.core.training.launch import prepare_session_data

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


def test_session_columns_round_trip_and_prepare(tmp_path: Path, tiny_model_plain: Path) -> None:
    s = Session(name="qa")
    s.data.train = [str(FIXTURES / "question_answer.csv")]
    s.data.val_ratio = 0
    s.data.columns = {"prompt": "question", "completion": "answer"}
    path = s.save(tmp_path / "qa.json")
    loaded = load_session(path)
    assert loaded.data.columns == {"prompt": "question", "completion": "answer"}
    model = ResolvedModel("tiny", tiny_model_plain, "tiny", "local")
    prepared = prepare_session_data(loaded, tmp_path / "data", model, seed=1, max_length=128)
    assert prepared.guess.name == "prompt_completion" and prepared.train_rows == 3
    first = json.loads(prepared.train_file.read_text().splitlines()[0])
    assert set(first) == {"prompt", "completion"}
