import pytest
import torch

from sharpen.feedback.likelihood import LikelihoodConfig, likelihood
from sharpen.policy import new_tiny_policy
from sharpen.types import Prompt, Sample
from sharpen.engines.hf import sample


class TokenValuePolicy:
    """log p(token t) = -0.1 * t, whatever the context: sums are easy to write by hand."""

    def encode_prompts(self, texts):
        return [[1] for _ in texts]

    def token_logprobs(self, prompt_ids, completion_ids, temperature=1.0):
        L = max(map(len, completion_ids))
        lp = torch.tensor([[-0.1 * t for t in c] + [0.0] * (L - len(c)) for c in completion_ids])
        mask = torch.tensor([[1.0] * len(c) + [0.0] * (L - len(c)) for c in completion_ids])
        return lp, mask


def test_reward_is_sequence_loglik_and_correct_is_ground_truth(fake_ctx, make_samples):
    samples = make_samples({"a": ("2", ["|2", "|33"])})  # token ids: '|' -> 77, '2' -> 3, '3' -> 4
    ctx = fake_ctx(policy=TokenValuePolicy())
    scored = likelihood(samples, LikelihoodConfig(), ctx)
    assert [s.reward for s in scored] == pytest.approx([-(7.7 + 0.3), -(7.7 + 0.4 + 0.4)])  # -8.0, -8.5
    assert [s.correct for s in scored] == [True, False]
    assert scored[0].scores == pytest.approx({"verifier": 1.0, "likelihood": -8.0})
    normed = likelihood(samples, LikelihoodConfig(normalize=True), ctx)
    assert [s.reward for s in normed] == pytest.approx([-8.0 / 2, -8.5 / 3])


def test_base_model_option_scores_with_the_reference(fake_ctx, make_samples):
    samples = make_samples({"a": ("2", ["|2"])})
    ctx = fake_ctx(policy=None, refs={"base": TokenValuePolicy()})
    assert likelihood(samples, LikelihoodConfig(model="base"), ctx)[0].reward == pytest.approx(-8.0)


def test_matches_the_samplers_own_logprobs_at_temperature_one(fake_ctx, make_samples):
    policy = new_tiny_policy(0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=2)
    [group] = sample(policy, ["12+34="], n=3, temperature=1.0, max_new_tokens=5, seed=0)
    samples = [Sample(Prompt("a", "12+34=", answer="46"), c, i) for i, c in enumerate(group)]
    scored = likelihood(samples, LikelihoodConfig(batch_size=2), fake_ctx(policy=policy))
    assert [s.reward for s in scored] == pytest.approx([sum(c.logprobs) for c in group], abs=1e-4)
