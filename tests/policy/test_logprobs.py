"""Chunked log-probs: the same values and gradients as a full [B, L, V] log-softmax."""
from __future__ import annotations

import torch

from sharpen.policy.logprobs import chunked_token_logprobs
from tests.conftest import small_tiny_policy


def test_chunks_match_full_log_softmax_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(37, 8, generator=g, requires_grad=True)
    targets = torch.randint(0, 50, (37,), generator=g)
    full = torch.log_softmax(head(hidden) / 0.7, -1)
    expected = full.gather(-1, targets[:, None]).squeeze(-1)
    expected_mean = full.mean(-1)
    (g_hidden,) = torch.autograd.grad(expected.sum(), hidden)
    got, mean = chunked_token_logprobs(head, hidden, targets, temperature=0.7, chunk=5, vocab_mean=True)
    assert torch.allclose(got, expected, atol=1e-6) and torch.allclose(mean, expected_mean, atol=1e-6)
    (c_hidden,) = torch.autograd.grad(got.sum(), hidden)
    assert torch.allclose(c_hidden, g_hidden, atol=1e-6)


def test_policy_token_logprobs_equal_a_plain_forward():
    policy = small_tiny_policy(0)
    prompts = [policy.encode_prompt("12+3="), policy.encode_prompt("4*4=")]
    completions = [policy.encode_completion("51"), policy.encode_completion("61|61")]
    lp, mask = policy.token_logprobs(prompts, completions)
    for b, (p, c) in enumerate(zip(prompts, completions)):
        with torch.no_grad():
            logits = policy.model(torch.tensor([p + c])).logits[0, len(p) - 1:len(p) + len(c) - 1]
        want = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
        assert torch.allclose(lp[b, :len(c)], want, atol=1e-5)
        assert mask[b].sum() == len(c) and (lp[b, len(c):] == 0).all()
