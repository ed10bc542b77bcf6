"""The label preview equals the labels TRL's SFTTrainer actually receives, and EOS is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.spec import TrainSpec

CONVERSATIONS = [
    {
        "messages": [
            {"role": "system", "content": "Extract fields as JSON."},
            {"role": "user", "content": "Ada lives in London, age 36."},
            {"role": "assistant", "content": '{"name": "Ada", "city": "London", "age": 36}'},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "hello world"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "extract the answer"},
            {"role": "assistant", "content": "answer question"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "The quick brown fox"},
            {"role": "assistant", "content": "jumps over the lazy dog."},
        ]
    },
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _spec(tmp_path: Path, rows: list[dict], data_format: str = "messages", **kw) -> TrainSpec:
    train = _write(tmp_path / "train.jsonl", rows)
    return TrainSpec(
        train_file=str(train),
        data_format=data_format,
        output_dir=str(tmp_path / "run"),
        max_length=256,
        **kw,
    )


def _trainer_batch(model_dir: Path, tok, inputs, tmp_path: Path):
    """Build a real SFTTrainer on the inputs and take one batch from its own dataloader."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=len(inputs.train),
        use_cpu=True,
        bf16=False,
        report_to=[],
        gradient_checkpointing=False,
        **inputs.config_kwargs,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=inputs.train, processing_class=tok)
    return next(iter(trainer.get_train_dataloader()))


def _assert_preview_matches(batch, previews) -> None:
    by_ids = {tuple(p.input_ids): p.labels for p in previews}
    assert len(batch["input_ids"]) == len(previews)
    for ids, mask, labels in zip(
        batch["input_ids"].tolist(), batch["attention_mask"].tolist(), batch["labels"].tolist()
    ):
        real = [i for i, m in zip(ids, mask) if m]
        real_labels = [lab for lab, m in zip(labels, mask) if m]
        assert tuple(real) in by_ids, "trainer tokenised an example the preview did not"
        assert by_ids[tuple(real)] == real_labels


def _check_model(model_dir: Path, tmp_path: Path, expected_mode: str) -> None:
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview, sft_trainer_inputs

    spec = _spec(tmp_path, CONVERSATIONS)
    tok = AutoTokenizer.from_pretrained(model_dir)
    inputs = sft_trainer_inputs(spec, tok)
    assert inputs.plan.mode == expected_mode
    previews, plan = label_preview(
        CONVERSATIONS,
        AutoTokenizer.from_pretrained(model_dir),
        data_format="messages",
        max_length=256,
    )
    assert plan.mode == expected_mode
    batch = _trainer_batch(model_dir, tok, inputs, tmp_path)
    _assert_preview_matches(batch, previews)
    eos = tok.eos_token_id
    for p in previews:
        trained = [i for i, lab in zip(p.input_ids, p.labels) if lab != -100]
        assert trained, "every example must train some tokens"
        assert eos in trained, "the end of the assistant turn (EOS) must be trained"
        # prompt tokens are masked: the first trained token comes after the user turn
        assert p.labels[0] == -100
        text = "".join(t for t, on in p.spans if on)
        assert "user" not in text.replace("<|im_end|>", "")


def test_preview_equals_trainer_labels_with_generation_markers(tiny_model: Path, tmp_path: Path):
    _check_model(tiny_model, tmp_path, "assistant_turns")


def test_preview_equals_trainer_labels_without_markers(tiny_model_plain: Path, tmp_path: Path):
    _check_model(tiny_model_plain, tmp_path, "assistant_turns")


@pytest.mark.slow
def test_preview_equals_trainer_labels_default_model(default_model: Path, tmp_path: Path):
    _check_model(default_model, tmp_path, "assistant_turns")


def test_markers_train_every_assistant_turn(tiny_model: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview

    tok = AutoTokenizer.from_pretrained(tiny_model)
    previews, _ = label_preview([CONVERSATIONS[1]], tok, data_format="messages")
    trained_text = "".join(t for t, on in previews[0].spans if on)
    assert "hello<|im_end|>" in trained_text and "answer question<|im_end|>" in trained_text
    assert "extract the answer" not in trained_text


def test_completion_only_off_trains_prompt(tiny_model_plain: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview

    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    previews, plan = label_preview(
        CONVERSATIONS[:1], tok, data_format="messages", completion_only_loss=False
    )
    assert plan.mode == "all_tokens"
    assert all(previews[0].trained)


def test_prompt_completion_plain_is_wrapped_as_chat(tiny_model_plain: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview, sft_trainer_inputs

    rows = [{"prompt": "hello world", "completion": "answer"}]
    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    inputs = sft_trainer_inputs(_spec(tmp_path, rows, "prompt_completion"), tok)
    assert inputs.plan.wrap_plain_as_chat and inputs.plan.mode == "assistant_turns"
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "answer"}],
        tokenize=True,
        return_dict=False,
    )
    assert inputs.train[0]["input_ids"] == list(ids)
    previews, _ = label_preview(rows, tok, data_format="prompt_completion")
    assert "".join(t for t, on in previews[0].spans if on).startswith("answer<|im_end|>")


def test_base_model_gets_chatml_with_eos(tiny_model_plain: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview

    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    tok.chat_template = None
    previews, plan = label_preview(CONVERSATIONS[:1], tok, data_format="messages")
    assert plan.fallback_template == "chatml" and plan.mode == "assistant_turns"
    assert tok.eos_token_id in [
        i for i, on in zip(previews[0].input_ids, previews[0].trained) if on
    ]


def test_text_trains_every_token_with_eos(tiny_model_plain: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import label_preview

    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    previews, plan = label_preview([{"text": "hello world"}], tok, data_format="text")
    assert plan.mode == "all_tokens" and all(previews[0].trained)
    assert previews[0].input_ids[-1] == tok.eos_token_id


def test_preference_inputs(tiny_model_plain: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import preference_trainer_inputs

    rows = [{"prompt": "hello", "chosen": "world", "rejected": "dog"}]
    spec = _spec(tmp_path, rows, "preference", method="dpo")
    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    inputs = preference_trainer_inputs(spec, tok)
    assert inputs.train[0]["chosen"] == [{"role": "assistant", "content": "world"}]
    assert inputs.config_kwargs == {"max_length": 256}


def test_sft_refuses_preference_data(tiny_model_plain: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from tuitune.core.data.training_view import sft_trainer_inputs
    from tuitune.core.errors import TuituneError

    rows = [{"prompt": "hello", "chosen": "world", "rejected": "dog"}]
    tok = AutoTokenizer.from_pretrained(tiny_model_plain)
    with pytest.raises(TuituneError, match="does not train with supervised"):
        sft_trainer_inputs(_spec(tmp_path, rows, "preference"), tok)
