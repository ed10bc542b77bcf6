"""Which turns train: every assistant turn on any template, per-turn weights, tool calls.

The labels come from tuitune's per-turn mask handed to TRL (``assistant_masks`` on tokenized
rows); these tests hold it against TRL's own ``assistant_only_loss`` mask on a template with
``{% generation %}`` markers, and against a real SFTTrainer batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuitune.core.errors import TuituneError
from tuitune.core.spec import TrainSpec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"

# A ChatML template that renders tools (Hermes / Qwen style), written for these tests; it has
# no generation markers, like most stock templates.
TOOLS_CHATML = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\n\n' }}{%- endif %}"
    "{{- 'Tools:\n<tools>' }}"
    "{%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\n</tools><|im_end|>\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\n' + (message['content'] or '') }}"
    "{%- for call in message.get('tool_calls') or [] %}"
    "{{- '<tool_call>' + ({'name': call['function']['name'], "
    "'arguments': call['function']['arguments']} | tojson) + '</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\n<tool_response>' + message['content'] + '</tool_response><|im_end|>\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)

MULTI = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "extract the answer"},
        {"role": "assistant", "content": "answer question"},
    ]
}


def _tok(model_dir: Path, template: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if template is not None:
        tok.chat_template = template
    return tok


def _trained_text(preview) -> str:
    return "".join(t for t, on in preview.spans if on)


def _rows(path: Path, fmt: str = "auto") -> list[dict]:
    from tuitune.core.data.reading import read_and_convert

    items, _guess, _ = read_and_convert([path], fmt=fmt)
    return [it.row for it in items]


def test_every_assistant_turn_trained_without_markers(tiny_model_plain: Path) -> None:
    from tuitune.core.data.training_view import label_preview

    previews, plan = label_preview([MULTI], _tok(tiny_model_plain), data_format="messages")
    assert plan.mode == "assistant_turns" and plan.mask_source == "per turn"
    text = _trained_text(previews[0])
    assert "hello<|im_end|>" in text and "answer question<|im_end|>" in text
    assert "extract the answer" not in text and "Be brief" not in text
    assert "1 rows train more than one turn" in plan.notes[-1]


def test_mask_equals_trl_assistant_only_loss_on_marker_template(tiny_model: Path) -> None:
    """On a template with {% generation %} markers tuitune's labels are TRL's own
    assistant_only_loss labels; the per-turn rendering alone finds the same turns and adds
    only the template's newline after each turn's <|im_end|> (which TRL's prompt/completion
    mask trains too)."""
    from datasets import Dataset

    from tuitune.core.data.training_view import (
        label_preview,
        plan_loss,
        tokenize_conversation,
        trl_prepare,
    )

    tok = _tok(tiny_model)
    rows = [MULTI, {"messages": MULTI["messages"][1:3]}]
    trl = trl_prepare(
        Dataset.from_list(rows),
        tok,
        {"max_length": None, "assistant_only_loss": True, "dataset_text_field": "text"},
    )
    previews, plan = label_preview(rows, tok, data_format="messages", max_length=None)
    assert plan.mask_source == "generation markers"
    for ex, pv in zip(trl, previews, strict=True):
        assert list(ex["input_ids"]) == pv.input_ids
        assert list(ex["labels"]) == pv.labels
    plan = plan_loss("messages", tok, rows=rows)
    plan.mask_source = "per turn"  # the method used for templates without markers
    for ex, row in zip(trl, rows, strict=True):
        ours = tokenize_conversation(row["messages"], tok, plan)["assistant_masks"]
        theirs = [int(lab != -100) for lab in ex["labels"]]
        extra = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
        assert all(ours[i] == 1 for i in extra), "per-turn spans cover every marked token"
        assert [tok.decode([ex["input_ids"][i]]) for i in extra] == ["\n"] * (
            sum(m["role"] == "assistant" for m in row["messages"])
        )


def _trainer_batch(model_dir: Path, tok, inputs, tmp_path: Path):
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=len(inputs.train),
        use_cpu=True,
        bf16=False,
        report_to=[],
        gradient_checkpointing=False,
        **inputs.config_kwargs,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=inputs.train,
        processing_class=tok,
    )
    return next(iter(trainer.get_train_dataloader()))


def _spec(tmp_path: Path, rows: list[dict], data_format: str = "messages") -> TrainSpec:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return TrainSpec(
        train_file=str(train),
        data_format=data_format,
        output_dir=str(tmp_path / "run"),
        max_length=512,
    )


def _assert_batch_equals_previews(batch, previews) -> None:
    by_ids = {tuple(p.input_ids): p.labels for p in previews}
    assert len(batch["input_ids"]) == len(previews)
    for ids, mask, labels in zip(
        batch["input_ids"].tolist(), batch["attention_mask"].tolist(), batch["labels"].tolist()
    ):
        real = tuple(i for i, m in zip(ids, mask) if m)
        assert real in by_ids
        assert by_ids[real] == [lab for lab, m in zip(labels, mask) if m]


def test_tool_calls_trained_through_the_template_and_batch_matches(
    tiny_model_plain: Path, tmp_path: Path, one_thread
) -> None:
    """glaive (ShareGPT function_call/observation) and OpenAI tool_calls rows: the tools
    reach the template, tool calls and answers are trained, tool results are not, and the
    preview's labels are the labels of a real SFTTrainer batch."""
    from tuitune.core.data.training_view import label_preview, sft_trainer_inputs

    rows = _rows(FIXTURES / "llamafactory" / "glaive_toolcall_demo.json")
    rows += _rows(FIXTURES / "openai_chat_tools.jsonl")[:1]
    tok = _tok(tiny_model_plain, TOOLS_CHATML)
    previews, plan = label_preview(rows, tok, data_format="messages", max_length=512)
    assert plan.tools and plan.mode == "assistant_turns"
    whole = "".join(previews[0].tokens)
    assert "<tools>" in whole and '"get_weather"' in whole
    trained = _trained_text(previews[0])
    assert (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Lyon"}}</tool_call>' in trained
    )
    assert "It is 14 degrees and cloudy in Lyon.<|im_end|>" in trained
    assert "tool_response" not in trained and "temp_c" not in trained and "<tools>" not in trained
    assert "I can't book flights" in _trained_text(previews[1])  # an earlier turn trains too
    assert "get_current_weather" in _trained_text(previews[2])
    inputs = sft_trainer_inputs(_spec(tmp_path, rows), tok)
    _assert_batch_equals_previews(_trainer_batch(tiny_model_plain, tok, inputs, tmp_path), previews)


def test_weights_switch_turns_off(tiny_model_plain: Path) -> None:
    from tuitune.core.data.training_view import label_preview

    openai = _rows(FIXTURES / "openai_chat_tools.jsonl")[1]
    assert openai["messages"][2] == {"role": "assistant", "content": "Paris", "weight": 0}
    v1 = _rows(FIXTURES / "llamafactory" / "v1_sft_demo.jsonl")[2]
    assert v1["messages"][1]["weight"] == 0
    previews, _ = label_preview([openai, v1], _tok(tiny_model_plain), data_format="messages")
    first = _trained_text(previews[0])
    assert "Paris, as if everyone" in first and "Paris<|im_end|>" not in first
    second = _trained_text(previews[1])
    assert "I'd rather keep things kind." in second and "idiot" not in second


def test_template_without_tools_is_refused(tiny_model: Path) -> None:
    """The tiny model's ChatML template ignores tools: refused, not silently dropped."""
    from tuitune.core.data.training_view import plan_loss, tool_support

    tok = _tok(tiny_model)
    assert tool_support(tok) == ["tool definitions", "tool calls"]
    rows = _rows(FIXTURES / "openai_chat_tools.jsonl")
    with pytest.raises(TuituneError, match="does not render tool definitions or tool calls"):
        plan_loss("messages", tok, rows=rows)
    assert tool_support(_tok(tiny_model, TOOLS_CHATML)) == []


@pytest.mark.slow
def test_smollm2_template_refuses_tools(default_model: Path) -> None:
    """SmolLM2's ChatML template renders role and content only: tools and tool calls vanish."""
    from tuitune.core.data.prepare import load_tokenizer
    from tuitune.core.data.training_view import tool_support

    assert tool_support(load_tokenizer(default_model)) == ["tool definitions", "tool calls"]


def test_kto_rows_train_desirable_answers_only(tiny_model_plain: Path, tmp_path: Path) -> None:
    from tuitune.core.data.training_view import label_preview, sft_trainer_inputs

    rows = _rows(FIXTURES / "llamafactory" / "kto_demo.json")
    assert {r["label"] for r in rows} == {True, False}
    tok = _tok(tiny_model_plain)
    previews, plan = label_preview(rows, tok, data_format="unpaired_preference")
    assert len(previews) == 5 and plan.drop_undesirable
    assert all("giggle" not in _trained_text(p) for p in previews)
    inputs = sft_trainer_inputs(_spec(tmp_path, rows, "unpaired_preference"), tok)
    assert len(inputs.train) == 5
    from tuitune.core.data.check import check_data

    check = check_data([FIXTURES / "llamafactory" / "kto_demo.json"], model_dir=tiny_model_plain)
    assert check.usable and len(check.masking.previews) == len(check.masking.rows) <= 5
    assert any("5 undesirable answers" in w for w in check.prepared.warnings)


def test_reasoning_and_v1_tool_call_parts(tiny_model_plain: Path) -> None:
    from tuitune.core.data.training_view import label_preview

    row = _rows(FIXTURES / "llamafactory" / "v1_tool_use_demo.jsonl")[0]
    call = row["messages"][2]
    assert call["content"].startswith("<think>\nI should look the film up.\n</think>")
    assert call["tool_calls"][0]["function"] == {
        "name": "get_movie",
        "arguments": {"title": "Inception"},
    }
    previews, _ = label_preview([row], _tok(tiny_model_plain, TOOLS_CHATML), data_format="messages")
    text = _trained_text(previews[0])
    assert '"get_movie"' in text and "Inception is a 2010 film." in text


def test_a_template_that_refuses_a_conversation_is_a_one_line_error(
    tiny_model_plain: Path,
) -> None:
    from tuitune.core.data.stats import token_lengths
    from tuitune.core.data.training_view import label_preview

    strict = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    )
    tok = _tok(tiny_model_plain, strict)
    with pytest.raises(TuituneError, match="cannot render a conversation.*must alternate"):
        label_preview([MULTI], tok, data_format="messages")
    with pytest.raises(TuituneError, match="cannot render a conversation"):
        token_lengths([MULTI], tok)


def test_base_model_fallback_renders_tools(tiny_model_plain: Path) -> None:
    """A base model gets tuitune's ChatML fallback, which renders tools Hermes-style."""
    from tuitune.core.data.training_view import label_preview, tool_support

    tok = _tok(tiny_model_plain)
    tok.chat_template = None
    rows = _rows(FIXTURES / "llamafactory" / "glaive_toolcall_demo.json")
    previews, plan = label_preview(rows, tok, data_format="messages", max_length=512)
    assert plan.fallback_template == "chatml" and plan.tools and tool_support(tok) == []
    assert plan.mask_source == "generation markers"
    trained = _trained_text(previews[0])
    assert (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Lyon"}}</tool_call>' in trained
    )
    assert "temp_c" not in trained and '"get_weather"' in "".join(previews[0].tokens)
