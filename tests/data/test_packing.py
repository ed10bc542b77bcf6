"""Packing is correct: packed examples do not attend to each other, and labels stay
completion-only inside packed rows.

Everything goes through the real path: the recipe chooses the levers for this CPU, the
runner's ``build_trainer`` builds TRL's SFTTrainer from the spec (best-fit-decreasing
packing, padding-free collator with position ids) and the tiny random Llama computes the
loss. On the CPU the recipe picks ``sdpa``: transformers derives a block-diagonal causal
mask from position ids that restart at every example (``find_packed_sequence_indices``).

Tolerance: per-example mean loss, packed vs alone, within 1e-4 nats in fp32 (measured: 0.0
on torch 2.13 CPU). The control without position ids (plain causal attention over the row,
so later examples see earlier ones) must differ by more than 1e-3 (measured: ~2e-2 on the
random tiny model), so the comparison can fail.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tuitune.core.hardware.recipe import Device, choose_recipe
from tuitune.core.runs.rundir import RunDir
from tuitune.core.spec import TrainSpec

TOLERANCE = 1e-4
LEAK = 1e-3
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "hello",
    "world",
    "answer",
    "question",
    "extract",
    "fields",
    "name",
    "city",
    "age",
    "London",
    "Ada",
]
CPU = Device("cpu", "test", 8 * 2**30, 8 * 2**30)


def write_rows(path: Path, n: int, seed: int = 0) -> list[int]:
    """Chat rows of very different lengths; returns rough token lengths per row."""
    rng = random.Random(seed)
    lengths = []
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            q = " ".join(rng.choices(WORDS, k=rng.randint(2, 30)))
            a = " ".join(rng.choices(WORDS, k=rng.randint(2, 30)))
            messages = [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
            lengths.append(2 * (len(q.split()) + len(a.split())) + 12)
    return lengths


def make_spec(model: Path, tmp_path: Path, *, packing: bool = True, **kw) -> TrainSpec:
    tmp_path.mkdir(parents=True, exist_ok=True)
    train = tmp_path / "train.jsonl"
    lengths = write_rows(train, 24)
    spec = TrainSpec(
        model=str(model),
        method=kw.pop("method", "full"),
        train_file=str(train),
        data_format="messages",
        output_dir=str(tmp_path / "run"),
        max_length=160,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        max_steps=2,
        use_cpu=True,
        lora_dropout=0.0,
        **kw,
    )
    recipe = choose_recipe(spec, CPU, lengths)
    spec = recipe.apply(spec)
    return spec if packing else spec.replace(packing=False)


def build(spec: TrainSpec):
    from tuitune.runner.build import build_trainer

    trainer, _ = build_trainer(spec, RunDir(Path(spec.output_dir)), [])
    return trainer


def segments(row: dict) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) of each example inside one packed row."""
    out, start = [], 0
    for n in row["seq_lengths"]:
        out.append((row["input_ids"][start : start + n], row["labels"][start : start + n]))
        start += n
    return out


def test_recipe_on_cpu_packs_with_sdpa(tiny_model: Path, tmp_path: Path) -> None:
    spec = make_spec(tiny_model, tmp_path)
    assert spec.packing is True
    assert spec.attn_implementation == "sdpa"
    assert spec.use_liger_kernel is False and spec.torch_compile is False


def test_packed_loss_equals_unpacked(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    import torch.nn.functional as F

    spec = make_spec(tiny_model, tmp_path)
    trainer = build(spec)
    assert trainer.padding_free, "bfd packing must switch TRL to its padding-free collator"
    model = trainer.model.eval()
    assert model.config._attn_implementation == "sdpa"
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    multi = [r for r in rows if len(r["seq_lengths"]) > 1]
    assert multi, "the data should pack several examples per row"
    batch = trainer.data_collator(multi[:3])
    ids, pos, labels = batch["input_ids"], batch["position_ids"], batch["labels"]
    assert ids.shape[0] == 1  # padding-free: the micro-batch is one flattened row
    starts = (pos[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    assert len(starts) - 1 == sum(len(r["seq_lengths"]) for r in multi[:3])

    def nll(logits: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits[:-1], lab[1:].clamp(min=0), reduction="none") * (
            lab[1:] != -100
        )

    with torch.no_grad():
        packed = nll(model(input_ids=ids, position_ids=pos).logits[0], labels[0])
        leaky = nll(model(input_ids=ids).logits[0], labels[0])
        diffs, leaks = [], []
        for s, e in zip(starts[:-1], starts[1:], strict=True):
            seg_ids, seg_lab = ids[0, s:e], labels[0, s:e]
            count = (seg_lab[1:] != -100).sum()
            if count == 0:
                continue
            alone = nll(model(input_ids=seg_ids[None]).logits[0], seg_lab).sum() / count
            diffs.append(abs(packed[s : e - 1].sum() / count - alone).item())
            leaks.append(abs(leaky[s : e - 1].sum() / count - alone).item())
    assert len(diffs) >= 3
    assert max(diffs) < TOLERANCE, f"packed examples see each other: {diffs}"
    # the control: without position ids later examples attend to earlier ones
    assert max(leaks[1:]) > LEAK, f"the leak control did not leak: {leaks}"


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_model_plain"])
def test_labels_stay_completion_only_under_packing(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Each example inside a packed row carries exactly the labels it has unpacked: system
    and user tokens -100, the answer trained. ``tiny_model`` masks with TRL's assistant mask
    ({% generation %} markers); ``tiny_model_plain`` via prompt/completion (last turn)."""
    model = request.getfixturevalue(fixture)
    packed = build(make_spec(model, tmp_path / "p"))
    plain = build(make_spec(model, tmp_path / "u", packing=False))
    reference = sorted((tuple(r["input_ids"]), tuple(r["labels"])) for r in plain.train_dataset)
    pieces = sorted(
        (tuple(i), tuple(lab)) for row in packed.train_dataset for i, lab in segments(row)
    )
    assert pieces == reference
    for _ids, lab in pieces:
        trained = [x != -100 for x in lab]
        assert trained[0] is False, "the prompt must not be trained"
        assert any(trained), "the answer must be trained"
        # prompt first, then the answer: one masked prefix, one trained run (the template's
        # newline after the end-of-turn token may follow it, untrained)
        first = trained.index(True)
        last = len(trained) - trained[::-1].index(True)
        assert first > 0 and all(trained[first:last]) and len(trained) - last <= 1
    # the collator keeps them and also masks each example's first token (nothing predicts it)
    row = packed.train_dataset[0]
    batch = packed.data_collator([row])
    flat = [x for _, lab in segments(row) for x in lab]
    starts = {sum(row["seq_lengths"][:k]) for k in range(len(row["seq_lengths"]))}
    expected = [-100 if k in starts else x for k, x in enumerate(flat)]
    assert batch["labels"][0].tolist() == expected


def test_runner_trains_with_the_recipe_levers(tiny_model: Path, tmp_path: Path) -> None:
    """The runner honours every lever field: the trainer's args and model show them, and a
    short run finishes counting only real tokens."""
    from tuitune.core.runs.events import read_events
    from tuitune.runner.train import run_child

    spec = make_spec(tiny_model, tmp_path, method="lora")
    trainer = build(spec)
    args = trainer.args
    assert args.packing is True and args.packing_strategy == "bfd"
    assert args.gradient_checkpointing == spec.gradient_checkpointing
    assert args.use_liger_kernel is False and args.torch_compile is False
    assert args.per_device_train_batch_size == spec.per_device_train_batch_size
    assert trainer.model.config._attn_implementation == "sdpa"
    forced = build(spec.replace(gradient_checkpointing=True))
    assert forced.args.gradient_checkpointing is True

    run = RunDir(Path(spec.output_dir))
    run.root.mkdir(parents=True, exist_ok=True)
    run.spec.write_text(spec.to_json())
    assert run_child(run.spec, signals=False) == 0
    events = read_events(run.events)
    final = events[-1]
    assert final["type"] == "finished", final
    real = sum(sum(r["seq_lengths"]) for r in trainer.train_dataset)
    rows_per_step = spec.per_device_train_batch_size * spec.gradient_accumulation_steps
    # two steps of packed rows: at most the rows' real tokens, never padding
    assert 0 < final["tokens_seen"] <= real
    assert final["tokens_seen"] <= 2 * rows_per_step * spec.max_length
