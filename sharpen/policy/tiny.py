"""The built-in tiny model: a small `LlamaForCausalLM` over the character tokenizer.

Sizes are the ones calibrated on 2 CPU cores (benchmarks/seed_calibration.py): 2 layers,
hidden 128, MLP 512, 4 heads, tied embeddings, ~0.5M parameters. It is an ordinary
transformers model, so it saves, loads and samples exactly like any HF checkpoint.
"""
from __future__ import annotations

from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sharpen.policy.policy import Policy
from sharpen.policy.tokenizer import build_char_tokenizer


def tiny_config(vocab_size: int, **overrides: Any) -> LlamaConfig:
    """The calibrated tiny Llama config; `overrides` replace any field (e.g. num_hidden_layers=4)."""
    fields: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def new_tiny_policy(seed: int, **overrides: Any) -> Policy:
    """A freshly initialised tiny policy; the same `seed` gives the same weights.

    The global torch RNG is forked, so creating a model does not disturb the caller's
    random stream (the seeding schedule and tests rely on their own seeds).
    """
    tokenizer = build_char_tokenizer()
    config = tiny_config(
        len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **overrides,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return Policy(model.float().eval(), tokenizer)
