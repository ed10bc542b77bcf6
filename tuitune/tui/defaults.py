"""A new session pre-filled with the bundled quickstart, so Enter through every step works.

When the lead's ``assets/sessions/quickstart.json`` exists its answers are copied (paths made
absolute, since the new session lives in the sessions directory); otherwise the bundled
quickstart files are named directly.
"""

from __future__ import annotations

import dataclasses

from tuitune.core import paths
from tuitune.core.decide.decision import QUICKSTART_ANSWERS, QUICKSTART_FLAGS, saved_answers
from tuitune.core.session import (
    DataChoice,
    EvalChoice,
    ModelChoice,
    Session,
    from_elsewhere,
    load_session,
)

QUICKSTART_TASK = "json_extract"


def copy_session(base: Session, *, name: str | None = None) -> Session:
    """A new session (new id, not yet saved) with ``base``'s answers; paths made absolute so
    the copy can live in the sessions directory. The file ``base`` came from is never written."""
    session = Session(name=base.name if name is None else name)
    session.model = dataclasses.replace(base.model)
    if base.model.trust_remote_code and base.path and from_elsewhere(base.path):
        # someone else's choice to run the model's code: off until the user turns it on
        # (the Model screen shows it and where it came from)
        session.model.trust_remote_code = False
        session.answers["trust_remote_code_cleared"] = {"from": str(base.path)}
    session.data = dataclasses.replace(
        base.data,
        train=[_abs(base, p) for p in base.data.train],
        eval=[_abs(base, p) for p in base.data.eval],
    )
    ev = base.evaluation
    session.evaluation = dataclasses.replace(
        ev,
        eval_file=_abs(base, ev.eval_file) if ev.eval_file else "",
        general_file=_abs(base, ev.general_file) if ev.general_file else "",
    )
    session.spec = dict(base.spec)
    session.answers = {
        **{k: v for k, v in base.answers.items() if isinstance(v, dict)},
        **session.answers,
    }
    decide = session.answers.get("decide", {})
    answers, flags = saved_answers(decide)
    session.answers["decide"] = {
        **({"note": decide["note"]} if "note" in decide else {}),
        "answers": answers or dict(QUICKSTART_ANSWERS),
        "flags": flags or dict(QUICKSTART_FLAGS),
    }
    return session


def new_session() -> Session:
    """A fresh session (not yet saved) with the quickstart's data, task and default model."""
    assets = paths.assets_dir()
    template = assets / "sessions" / "quickstart.json"
    session = Session(name="quickstart")
    if template.is_file():
        try:
            return copy_session(load_session(template))
        except Exception:  # noqa: BLE001 - a broken template must not stop the wizard
            pass
    quick = assets / "quickstart"
    general = assets / "general" / "general.jsonl"
    session.model = ModelChoice(ref="default")
    session.data = DataChoice(train=[str(quick / "train.jsonl")])
    session.evaluation = EvalChoice(
        task=QUICKSTART_TASK,
        eval_file=str(quick / "eval.jsonl"),
        general_file=str(general) if general.exists() else "",
    )
    session.answers = {"decide": _decide_defaults()}
    return session


def _decide_defaults() -> dict[str, object]:
    return {"answers": dict(QUICKSTART_ANSWERS), "flags": dict(QUICKSTART_FLAGS), "prefilled": True}


def _abs(session: Session, p: str) -> str:
    return str(session.resolve(p).resolve()) if p else p
