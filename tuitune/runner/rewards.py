"""GRPO's programmatic rewards: a task scorer from tuitune.core.evaluation.tasks, and its prompts.

Each prompt needs a reference the scorer compares completions with. It comes from the
row's ``reference`` field when there is one, else from the answer the data already holds
(the final assistant turn, the completion, or the chosen answer of a preference pair).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tuitune.core.data.training_view import read_jsonl
from tuitune.core.errors import TuituneError
from tuitune.core.evaluation.tasks import get_task
from tuitune.core.spec import TrainSpec

DEFAULT_REWARD = "json_extract"


def _text(content: Any) -> str:
    if isinstance(content, list):  # conversational completion: [{"role": ..., "content": ...}]
        return "".join(m.get("content", "") for m in content if isinstance(m, dict))
    return str(content)


def prompt_and_reference(row: dict[str, Any]) -> tuple[Any, str] | None:
    """(prompt in TRL's standard form, reference as a string) for one curated row."""
    reference = row.get("reference")
    if "messages" in row:
        msgs = row["messages"]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        prompt = msgs[:last] if last is not None else msgs
        if reference is None and last is not None:
            reference = msgs[last]["content"]
    elif "prompt" in row:
        prompt = row["prompt"]
        if reference is None:
            reference = row.get("completion", row.get("chosen"))
            reference = _text(reference) if reference is not None else None
    else:
        return None
    if reference is None or not prompt:
        return None
    if not isinstance(reference, str):
        reference = json.dumps(reference)
    return prompt, reference


def _prompts(path: str) -> Any:
    from datasets import Dataset

    pairs = [p for r in read_jsonl(path) if (p := prompt_and_reference(r)) is not None]
    if not pairs:
        raise TuituneError(
            "GRPO needs prompts with a reference answer to score against",
            path=path,
            fix="give messages with an assistant answer, prompt/completion rows or a "
            "'reference' field",
        )
    return Dataset.from_list([{"prompt": p, "reference": r} for p, r in pairs])


def grpo_datasets(spec: TrainSpec) -> tuple[Any, Any | None]:
    return _prompts(spec.train_file), (_prompts(spec.eval_file) if spec.eval_file else None)


def reward_function(spec: TrainSpec) -> Callable[..., list[float]]:
    """The task scorer as a TRL reward function: the mean of the task's metrics (all in
    [0, 1]), which rewards partial progress (valid JSON, right keys) and not only exact hits."""
    task = get_task(spec.reward_function or DEFAULT_REWARD)

    def reward(
        prompts: list[Any], completions: list[Any], reference: list[str], **_: Any
    ) -> list[float]:
        out = []
        for completion, ref in zip(completions, reference, strict=True):
            scores = task.score(_text(completion), ref)
            out.append(sum(scores[m] for m in task.metrics) / len(task.metrics))
        return out

    reward.__name__ = task.name
    return reward
