"""Chat templates: which one a model has, the ChatML fallback for base models, and rendering.

A base model has no chat template; training conversations on it needs one, and the same one
must be used at generation time. tuitune offers ChatML (the format SmolLM2 and Qwen use),
written with ``{% generation %}`` markers so TRL can mask every assistant turn, and ending
each assistant turn with the tokenizer's own EOS when that differs from ``<|im_end|>`` so
the model learns to stop. With ``tools`` it renders them Hermes/Qwen style (a ``<tools>``
block in the system turn, ``<tool_call>{...}</tool_call>`` in assistant turns, results as
``tool`` turns); without tools its output is the plain ChatML it always was.
"""

from __future__ import annotations

from typing import Any

from tuitune.core.errors import TuituneError

CHATML_FALLBACK = (
    "{% if tools %}"
    "{{ '<|im_start|>system\n' }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\n\n' }}{% endif %}"
    '{{ \'You may call these tools. Reply with <tool_call>{"name": ..., "arguments": ...}\''
    " + '</tool_call> to call one.\n<tools>' }}"
    "{% for tool in tools %}{{ '\n' + (tool | tojson) }}{% endfor %}"
    "{{ '\n</tools><|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if tools and loop.first and message['role'] == 'system' %}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] }}"
    "{% for call in message.get('tool_calls') or [] %}"
    "{{ '<tool_call>' + ({'name': call['function']['name'], "
    "'arguments': call['function']['arguments']} | tojson) + '</tool_call>' }}"
    "{% endfor %}"
    "{{ '<|im_end|>' }}"
    "{% if eos_token and eos_token != '<|im_end|>' %}{{ eos_token }}{% endif %}"
    "{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chat_template_of(tokenizer: Any) -> str | None:
    """The tokenizer's default chat template text, or None for a base model."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return template or None


def has_generation_markers(template: str | None) -> bool:
    """True when the template marks assistant spans with ``{% generation %}`` (TRL's rule)."""
    if not template:
        return False
    from trl.chat_template_utils import has_generation_markers as trl_has

    return bool(trl_has(template))


def ensure_chat_template(tokenizer: Any, choice: str = "chatml") -> str | None:
    """Give a template-less tokenizer the ChatML fallback; returns the name applied, if any.

    The tokenizer object is changed in memory; the runner saves it with the adapter, so the
    template used in training is the one used for generation afterwards.
    """
    if chat_template_of(tokenizer) is not None:
        return None
    if choice != "chatml":
        raise TuituneError(f"unknown fallback template {choice!r}", fix="use chatml")
    tokenizer.chat_template = CHATML_FALLBACK
    return "chatml"


def _turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "weight"} for m in messages]


def render(tokenizer: Any, row: dict[str, Any]) -> str:
    """The text the model sees for one standard-form row (for previews and length counts);
    a row's ``tools`` go to the template as ``apply_chat_template`` takes them."""
    tools = row.get("tools") or None
    if "segments" in row:  # Axolotl input_output: concatenated as written, no template
        return "".join(seg["text"] for seg in row["segments"])
    if "messages" in row:
        return tokenizer.apply_chat_template(_turns(row["messages"]), tools=tools, tokenize=False)
    if "chosen" in row:
        row = {"prompt": row.get("prompt", ""), "completion": row["chosen"]}
    if "prompt" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list) or isinstance(completion, list):
            p = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            c = (
                completion
                if isinstance(completion, list)
                else [{"role": "assistant", "content": completion}]
            )
            return tokenizer.apply_chat_template(_turns(p + c), tools=tools, tokenize=False)
        return prompt + completion
    return str(row.get("text", ""))
