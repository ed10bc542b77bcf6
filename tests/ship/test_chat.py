"""The playground: streamed side-by-side answers from one model load, on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runner_kit import make_spec, train

from tuitune.core.errors import TuituneError
from tuitune.core.runs.rundir import RunDir
from tuitune.core.ship.chat import ChatSession, Decoding, chat_target, open_chat

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lora_run(tiny_model, data, tmp_path_factory) -> RunDir:  # noqa: F811
    root = tmp_path_factory.mktemp("chat") / "run"
    rc, run = train(make_spec(tiny_model, data, root, max_steps=4, save_steps=4))
    assert rc == 0
    # a curated split with a fixed system prompt, as prepare_data writes it
    run.data.mkdir(exist_ok=True)
    rows = [json.loads(line) for line in Path(data["train"]).read_text().splitlines()]
    sys_msg = {"role": "system", "content": "Reply with JSON."}
    (run.data / "train.jsonl").write_text(
        "".join(json.dumps({"messages": [sys_msg, *r["messages"]]}) + "\n" for r in rows)
    )
    return run


def _reference(chat: ChatSession, side: str) -> str:
    """What plain ``generate`` gives for the same prompt (adapter disabled for the base)."""
    import torch

    ids, mask = chat.prompt_ids(side)
    kw = dict(input_ids=ids, attention_mask=mask, pad_token_id=chat.tokenizer.pad_token_id)
    kw.update(chat.decoding.generate_kwargs())
    with torch.inference_mode():
        if side == "base":
            with chat.model.disable_adapter():
                out = chat.model.generate(**kw)
        else:
            out = chat.model.generate(**kw)
    return chat.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_streamed_answers_equal_plain_generate_for_both_sides_and_turns(lora_run):
    chat = open_chat(lora_run, Decoding(max_new_tokens=12))
    assert chat.state.system == "Reply with JSON."  # taken from the training rows
    chat.load()
    chat.send("Ada Lovelace is 36, lives in London.")
    for side in ("base", "tuned"):
        expected = _reference(chat, side)
        chunks = list(chat.stream(side))
        assert len(chunks) > 1  # streamed, not one block
        assert "".join(chunks).strip() == expected.strip()
        assert chat.replies[side].text == expected
        assert chat.replies[side].new_tokens > 0
    from peft import PeftModel

    assert isinstance(chat.model, PeftModel)  # one load serves both sides
    first = dict(chat.state.turns[0])
    assert first["base"] != first["tuned"]  # the adapter changes this tiny model's answer
    # second turn: each side sees its own earlier answer in the prompt
    chat.send("And her age?")
    msgs = chat.state.messages("tuned")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"] == first["tuned"]
    assert chat.state.messages("base")[2]["content"] == first["base"]
    assert chat.answer("base").text == chat.state.turns[1]["base"]
    chat.reset()
    assert chat.state.turns == [] and chat.state.system


def test_sampling_is_seeded_alike_for_both_sides(lora_run):
    chat = ChatSession(
        chat_target(lora_run), Decoding(max_new_tokens=8).with_setting("temperature", "1.5")
    )
    assert not chat.decoding.greedy
    chat.send("hello")
    a = chat.answer("tuned").text
    chat.state.turns[-1]["tuned"] = None
    assert chat.answer("tuned").text == a  # same seed, same sample


def test_stop_ends_a_generation_early(lora_run):
    chat = open_chat(lora_run, Decoding(max_new_tokens=60))
    chat.send("Tell me a long story.")
    got = []
    for chunk in chat.stream("tuned"):
        got.append(chunk)
        chat.stop()
    reply = chat.replies["tuned"]
    assert reply.stopped and reply.new_tokens < 60


def test_decoding_settings_parse_and_refuse():
    d = Decoding()
    assert d.generate_kwargs()["do_sample"] is False
    assert d.with_setting("max_new_tokens", "32").max_new_tokens == 32
    s = d.with_setting("top_p", "0.8")
    assert not s.greedy and s.generate_kwargs()["top_p"] == 0.8
    assert s.with_setting("greedy", "on").greedy
    assert "greedy" in d.describe()
    for name, raw in (("temperature", "0"), ("top_p", "2"), ("nope", "1"), ("max_new_tokens", "x")):
        with pytest.raises(TuituneError):
            d.with_setting(name, raw)


def test_runs_that_cannot_chat_say_why(tmp_path):
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    run.spec.write_text(json.dumps({"method": "lora", "model": "x"}))
    with pytest.raises(TuituneError, match="no saved result"):
        chat_target(run)
    run.adapter.mkdir()
    run.spec.write_text(json.dumps({"method": "reward", "model": "x"}))
    with pytest.raises(TuituneError, match="reward model"):
        chat_target(run)


def test_chat_command_plain_terminal(lora_run):
    script = "Ada is 36, lives in Rome.\n/set max_new_tokens 6\n/settings\nhi\n/reset\n/quit\n"
    proc = subprocess.run(
        [sys.executable, "-m", "tuitune", "chat", str(lora_run.root), "--max-new-tokens", "8"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("base:") == 2 and out.count("tuned:") == 2
    assert "max_new_tokens 6" in out
    assert "conversation cleared" in out


def test_a_qlora_run_chats_on_its_4bit_base(lora_run, tmp_path):
    """The base loads as trained: nf4 with the run's quantization config, never bf16."""
    import shutil

    from tuitune.core.spec import TrainSpec

    run = RunDir(tmp_path / "qrun")
    run.root.mkdir()
    spec = TrainSpec.load(lora_run.spec).replace(method="qlora", load_in_4bit=True, use_cpu=True)
    run.spec.write_text(spec.to_json())
    shutil.copytree(lora_run.adapter, run.adapter)
    chat = open_chat(run, Decoding(max_new_tokens=4))
    assert chat.target.load_in_4bit and chat.target.method == "qlora"
    chat.load()
    kw = chat.load_kwargs()
    assert kw["quantization_config"].bnb_4bit_quant_type == "nf4"
    q_proj = chat.model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj.base_layer).__name__ == "Linear4bit"
    assert "nf4" in chat.describe_load()
    chat.send("Ada is 36, lives in Rome.")
    assert chat.answer("base").new_tokens > 0 and chat.answer("tuned").new_tokens > 0


def test_lora_chat_loads_the_training_dtype(lora_run):
    import torch

    chat = open_chat(lora_run)
    chat.load()
    assert chat.precision.inference == "fp32"  # CPU: the policy is fp32
    assert "quantization_config" not in chat.load_kwargs()
    assert all(p.dtype == torch.float32 for p in chat.model.parameters())


def test_full_sft_chat_answers_from_two_models_also_when_swapped(tiny_model, data, tmp_path):  # noqa: F811
    """A full fine-tune chats with its base and its tuned model; where both do not fit on a
    GPU the idle one waits in RAM (``swap``): the answers stay the same."""
    rc, run = train(make_spec(tiny_model, data, tmp_path / "full", method="full", max_steps=2))
    assert rc == 0
    chat = open_chat(run, Decoding(max_new_tokens=6))
    chat.load()
    assert chat.target.method == "full" and chat.target.adapter is None
    assert chat.base_model is not None and chat.model is not chat.base_model
    assert chat.swap is False  # the CPU holds both
    chat.send("Ada is 36, lives in Rome.")
    together = {side: chat.answer(side).text for side in ("base", "tuned")}
    chat.swap = True  # what a GPU too small for both gets
    chat.reset()
    chat.send("Ada is 36, lives in Rome.")
    assert {side: chat.answer(side).text for side in ("base", "tuned")} == together
    assert "base and tuned" in chat.describe_load()
