from pathlib import Path


def test_tiny_model_loads_and_renders(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    msgs = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]
    out = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True)
    assert sum(out["assistant_masks"]) > 0
    assert model.num_parameters() > 0
