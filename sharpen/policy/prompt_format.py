"""How a task's prompt text becomes the ids the model is conditioned on: the tokenizer's
chat template (an instruct model needs its own turn markers) or the raw text.

`auto` takes the chat template when the checkpoint ships one; raw prompts get the
tokenizer's own special tokens (bos), a chat template writes its own.
"""
from __future__ import annotations

from typing import Callable, Sequence

from transformers import PreTrainedTokenizerBase

from sharpen.errors import UserError


def resolve_prompt_format(tokenizer: PreTrainedTokenizerBase, prompt_format: str) -> str:
    """auto -> chat when the tokenizer has a chat template, else raw; chat needs a template."""
    if prompt_format == "auto":
        prompt_format = "chat" if getattr(tokenizer, "chat_template", None) else "raw"
    if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise UserError("policy.prompt_format: chat, but the checkpoint's tokenizer has no chat template; "
                        "set policy.prompt_format=raw")
    return prompt_format


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt_format: str, system_prompt: str | None, text: str) -> str:
    """The prompt as the model sees it: the chat template (user turn, optional system
    turn, generation prompt) or the raw text."""
    if prompt_format != "chat":
        return text
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompt_format: str, system_prompt: str | None,
                   texts: Sequence[str], eos_id: Callable[[], int]) -> list[list[int]]:
    """Prompt ids of many texts in one tokenizer call. `eos_id` is asked for only when the
    tokenizer has no bos (it raises for a tokenizer without either)."""
    if not texts:
        return []
    if prompt_format == "chat":
        rendered = [render_prompt(tokenizer, prompt_format, system_prompt, t) for t in texts]
        encoded = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    else:
        encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    # An empty prompt without bos: condition on bos/eos so there is a position to predict from.
    start = [eos_id() if bos is None else int(bos)]
    return [list(ids) if len(ids) else start for ids in encoded]
