"""A tiny stand-in Policy for objective tests: a 1-layer Llama over a character vocabulary.

It implements exactly the Policy surface the objectives use (encode_prompt,
encode_completion, token_logprobs, copy, eos_id, model), so these tests do not depend on
the real tiny-model backend's size or tokenizer.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sharpen.types import Context

VOCAB = "0123456789+-*=|ab"
PAD, EOS, BOS = 0, 1, 2


class TinyPolicy:
    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(VOCAB) + 3, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                          bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
        self.model = LlamaForCausalLM(cfg).eval()
        self.eos_id = EOS

    def encode_prompt(self, text: str) -> list[int]:
        return [BOS] + [VOCAB.index(c) + 3 for c in text]

    def encode_completion(self, text: str, eos: bool = True) -> list[int]:
        return [VOCAB.index(c) + 3 for c in text] + ([EOS] if eos else [])

    def token_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                       temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [p + c for p, c in zip(prompt_ids, completion_ids)]
        width = max(map(len, seqs))
        ids = torch.tensor([s + [PAD] * (width - len(s)) for s in seqs])
        attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=attn).logits / temperature, -1)
        L = max(map(len, completion_ids))
        out = torch.zeros(len(seqs), L)
        mask = torch.zeros(len(seqs), L)
        rows = []
        for b, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
            rows.append(torch.cat([logp[b, pos, torch.tensor(c)], torch.zeros(L - len(c))]))
            mask[b, : len(c)] = 1
        out = torch.stack(rows)
        return out, mask

    def copy(self) -> "TinyPolicy":
        other = copy.copy(self)
        other.model = copy.deepcopy(self.model).eval()
        for p in other.model.parameters():
            p.requires_grad_(False)
        return other


class _NoProgress:
    def __call__(self, description: str, total: int) -> Any:
        return self

    def __enter__(self) -> Any:
        return lambda k: None

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.fixture
def tiny_policy() -> TinyPolicy:
    return TinyPolicy(seed=0)


@pytest.fixture
def make_ctx():
    def make(policy: TinyPolicy, refs: dict[str, Any] | None = None, round: int = 1) -> Context:
        refs = refs or {"base": policy.copy(), "last": policy.copy()}
        return Context(task=None, policy=policy, round=round, seed=0, reference=refs.__getitem__,
                       progress=_NoProgress())
    return make
