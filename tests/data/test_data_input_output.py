"""Axolotl's template-free ``input_output`` rows: detected, kept as written, and trained on
exactly their labelled segments, tokenized and concatenated as Axolotl does it (each segment
alone, no special tokens, no chat template), through the same tokenized-rows path TRL gets.

The fixture is tuitune's own file in the shape of Axolotl's docs/input_output.qmd.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.spec import TrainSpec

FIXTURE = Path(__file__).parents[1] / "fixtures" / "data" / "axolotl_input_output.jsonl"
SEGMENTS = [json.loads(line)["segments"] for line in FIXTURE.read_text().splitlines()]


def _tok(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _expected(tok, segments: list[dict], labelled: bool = True) -> tuple[list[int], list[int]]:
    """Axolotl's RawInputOutputStrategy: ids per segment, labels = ids or -100 per label."""
    ids: list[int] = []
    labels: list[int] = []
    for seg in segments:
        part = tok(seg["text"], add_special_tokens=False)["input_ids"]
        ids += part
        labels += part if seg["label"] or not labelled else [-100] * len(part)
    return ids, labels


def _prepare(tmp_path: Path, **kw):
    from tuitune.core.data.prepare import prepare_data

    return prepare_data([FIXTURE], tmp_path / "data", val_ratio=0, **kw)


def test_detected_and_kept_as_written(tmp_path: Path) -> None:
    p = _prepare(tmp_path)
    assert (p.guess.name, p.data_format) == ("input_output", "input_output")
    rows = [json.loads(line) for line in p.train_file.read_text().splitlines()]
    # spacing, markup and special-token text are the user's: no text step touched them
    assert [r["segments"] for r in rows] == SEGMENTS[:3]
    assert p.report.step("normalize_whitespace").details["skipped"].startswith("segments are")
    broken = p.report.step("drop_broken")
    assert broken.dropped == 1
    assert broken.details["reasons"] == {"no trained segment (every label is false)": 1}
    assert any("column 'source': not used" in w for w in p.warnings)


def test_forced_format_and_bad_segment_named(tmp_path: Path) -> None:
    from tuitune.core.errors import TuituneError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"segments": [{"label": "maybe", "text": "x"}]}) + "\n")
    from tuitune.core.data.prepare import prepare_data

    for fmt in ("auto", "input_output"):
        with pytest.raises(TuituneError, match=r"bad\.jsonl:1: .*segments\[0\]\.label is 'maybe'"):
            prepare_data([bad], tmp_path / fmt, val_ratio=0, fmt=fmt)


def test_labels_are_the_segments_mask_in_a_real_trainer_batch(
    tiny_model_plain: Path, tmp_path: Path, one_thread
) -> None:
    """The preview's labels equal Axolotl's per-segment labels, and a real SFTTrainer batch
    built from ``sft_trainer_inputs`` carries exactly those labels."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from tuitune.core.data.training_view import label_preview, sft_trainer_inputs

    p = _prepare(tmp_path)
    rows = [json.loads(line) for line in p.train_file.read_text().splitlines()]
    tok = _tok(tiny_model_plain)
    previews, plan = label_preview(rows, tok, data_format="input_output", max_length=512)
    assert plan.mode == "labelled_segments" and not plan.per_turn
    assert tok.chat_template is not None  # the template exists but is not used
    expected = [_expected(tok, r["segments"]) for r in rows]
    assert [(pv.input_ids, pv.labels) for pv in previews] == expected
    trained = "".join(t for t, on in previews[0].spans if on)
    assert trained == "<|endoftext|>Hello\nhi there!. farewell<|im_end|>"
    assert "goodbye" not in trained

    spec = TrainSpec(
        train_file=str(p.train_file),
        data_format="input_output",
        output_dir=str(tmp_path / "run"),
        max_length=512,
    )
    inputs = sft_trainer_inputs(spec, tok)
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=len(rows),
        use_cpu=True,
        bf16=False,
        report_to=[],
        gradient_checkpointing=False,
        **inputs.config_kwargs,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_plain),
        args=args,
        train_dataset=inputs.train,
        processing_class=tok,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    got = []
    for ids, mask, labels in zip(
        batch["input_ids"].tolist(), batch["attention_mask"].tolist(), batch["labels"].tolist()
    ):
        got.append(
            (
                [i for i, m in zip(ids, mask) if m],
                [lab for lab, m in zip(labels, mask) if m],
            )
        )
    assert sorted(got) == sorted(expected)
    assert trainer.train().training_loss > 0


def test_completion_only_off_trains_every_segment(tiny_model_plain: Path) -> None:
    from tuitune.core.data.training_view import label_preview

    tok = _tok(tiny_model_plain)
    rows = [{"segments": s} for s in SEGMENTS[:3]]
    previews, plan = label_preview(
        rows, tok, data_format="input_output", completion_only_loss=False, max_length=512
    )
    assert plan.mode == "all_tokens"
    assert [pv.labels for pv in previews] == [_expected(tok, r["segments"], False)[1] for r in rows]


def test_data_check_shows_trained_segments(tiny_model_plain: Path, tmp_path: Path, capsys) -> None:
    from tuitune.cli import main

    rc = main(["data", "check", str(FIXTURE), "--model", str(tiny_model_plain), "--val-ratio", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Format: input_output -> input_output" in out
    assert "Masking: labelled_segments (template: not used (input_output segments))" in out
    assert "[[<|endoftext|>Hello\n  hi there!. ]]goodbye [[farewell<|im_end|>]]" in out
    assert "Data is usable." in out
    rc = main(
        [
            "data",
            "check",
            str(FIXTURE),
            "--model",
            str(tiny_model_plain),
            "--val-ratio",
            "0",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["format"]["source"] == "input_output"
    assert report["masking"]["mode"] == "labelled_segments"


def test_exports_keep_the_segments(tmp_path: Path) -> None:
    """Axolotl reads the curated segments as they are (type: input_output); TRL and
    LLaMA-Factory configs have no such form and are refused with the fix."""
    from tuitune.core.errors import TuituneError
    from tuitune.core.runs.rundir import RunDir
    from tuitune.core.ship.export import axolotl_config, export_run

    spec = TrainSpec(
        model="m", train_file="train.jsonl", data_format="input_output", output_dir="r"
    )
    dataset = axolotl_config(spec)["datasets"][0]
    assert dataset["type"] == "input_output" and dataset["path"] == "train.jsonl"
    assert axolotl_config(spec)["train_on_inputs"] is False
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.spec.write_text(spec.to_json())
    for fmt in ("trl", "llamafactory"):
        with pytest.raises(TuituneError, match=f"{fmt} has no form for input_output data"):
            export_run(run, fmt, tmp_path / "out")
    assert not (tmp_path / "out").exists()
