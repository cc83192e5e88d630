"""The sampler's log-probs, stopping, batching and determinism, checked against plain forwards."""
from __future__ import annotations

import pytest
import torch

from sharpen.policy import new_tiny_policy
from sharpen.engines.sampler import inverse_cdf_sample, nucleus
from sharpen.engines.hf import HFEngine, greedy, sample
from sharpen.types import SamplingParams

PROMPTS = ["1+2=", "0321+0654=", "x", "def f(a, b):\n  return "]


@pytest.fixture(scope="module")
def policy():
    return new_tiny_policy(0)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_sampler_logprobs_equal_full_forward(policy, temperature, top_p):
    groups = sample(policy, PROMPTS, n=4, temperature=temperature, top_p=top_p, max_new_tokens=40,
                           seed=1, batch_size=3)
    assert [len(grp) for grp in groups] == [4] * len(PROMPTS)
    flat = [(i, c) for i, grp in enumerate(groups) for c in grp]
    finished = [c.finished for _, c in flat]
    assert any(finished) and not all(finished), "the workload must mix early stops and full-length rows"
    for _, c in flat:
        assert len(c.token_ids) == len(c.logprobs) <= 40
        assert (c.token_ids[-1] == policy.eos_id) == c.finished
        assert policy.eos_id not in c.token_ids[:-1]
        assert c.text == policy.decode(c.token_ids)
    lp, mask = policy.token_logprobs([policy.encode_prompt(PROMPTS[i]) for i, _ in flat],
                                     [c.token_ids for _, c in flat], temperature=temperature)
    expected = torch.zeros_like(lp)
    for r, (_, c) in enumerate(flat):
        expected[r, : len(c.logprobs)] = torch.tensor(c.logprobs)
        assert mask[r].sum().item() == len(c.token_ids)
    assert torch.allclose(lp, expected, atol=1e-5, rtol=0), (lp - expected).abs().max()


def test_sampling_is_deterministic_for_a_generator(policy):
    def run(seed):
        out = sample(policy, PROMPTS, n=3, max_new_tokens=12, seed=seed)
        return [[c.token_ids for c in grp] for grp in out]

    assert run(5) == run(5)
    assert run(5) != run(6)


def _argmax_continuation(policy, prompt: str, steps: int) -> list[int]:
    """Greedy decoding the slow way: a full forward of the whole sequence per token, no cache or padding."""
    ids = policy.encode_prompt(prompt)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            logits = policy.model(torch.tensor([ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
            if out[-1] == policy.eos_id:
                break
    return out


def test_greedy_equals_argmax_of_full_forward(policy):
    texts = greedy(policy, PROMPTS, max_new_tokens=15, batch_size=2)
    for prompt, text in zip(PROMPTS, texts):
        assert text == policy.decode(_argmax_continuation(policy, prompt, 15))


def test_tiny_top_p_is_greedy(policy):
    argmax = sample(policy, PROMPTS, n=1, temperature=0.0, max_new_tokens=15)
    tiny_p = sample(policy, PROMPTS, n=2, temperature=1.0, top_p=1e-6, max_new_tokens=15,
                           seed=0)
    for g, t in zip(argmax, tiny_p):
        assert t[0].token_ids == t[1].token_ids == g[0].token_ids


def test_nucleus_keeps_smallest_set_reaching_top_p():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    assert torch.equal(nucleus(probs, 0.7), torch.tensor([[0.0, 0.5, 0.3, 0.0]]))
    assert torch.equal(nucleus(probs, 0.5), torch.tensor([[0.0, 0.5, 0.0, 0.0]]))
    assert torch.equal(nucleus(probs, 1.0), probs)


def test_inverse_cdf_sample_follows_the_distribution():
    probs = torch.tensor([0.2, 0.0, 0.5, 0.3, 0.0]).repeat(20_000, 1) * 3.0  # unnormalised is fine
    draws = inverse_cdf_sample(probs, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    assert freq[1] == 0 and freq[4] == 0
    assert torch.allclose(freq, torch.tensor([0.2, 0.0, 0.5, 0.3, 0.0]), atol=0.015)


def test_prefix_prefilled_once_and_finished_rows_dropped(policy):
    sizes: list[tuple[int, int]] = []
    engine = HFEngine(policy)
    engine.sync(policy)  # the engine samples its own copy of the weights: hook that one
    hook = engine.model.model.register_forward_pre_hook(
        lambda mod, args, kwargs: sizes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        groups = engine.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=40), [1, 2, 3, 4])
    finally:
        hook.remove()
    assert sizes[0][0] == len(PROMPTS)  # prefill: one row per prompt, not per sample
    steps = [b for b, length in sizes[1:]]
    assert all(length == 1 for _, length in sizes[1:])  # decode steps feed only the new token
    assert steps == sorted(steps, reverse=True) and steps[-1] < 4 * len(PROMPTS)
    completions = [c for grp in groups for c in grp]
    assert any(c.finished and len(c.token_ids) < 40 for c in completions)
    # Each row is fed every token it sampled except its last: finished rows cost nothing more.
    assert sum(steps) == sum(len(c.token_ids) - 1 for c in completions)


def test_progress_counts_prompts(policy):
    seen: list[int] = []
    sample(policy, PROMPTS, n=2, max_new_tokens=3, batch_size=3, progress=seen.append,
                  seed=0)
    assert seen == [3, 1]
