import math

import pytest
import torch

from sharpen.feedback.self_certainty import SelfCertaintyConfig, sample_self_certainty, self_certainty, self_certainty_feedback
from sharpen.policy import new_tiny_policy


def test_self_certainty_by_hand():
    assert self_certainty(torch.zeros(3, 5)).item() == pytest.approx(0.0, abs=1e-7)  # uniform: KL(U || U) = 0
    # p = [0.5, 0.25, 0.25]: -log 3 - (log 0.5 + 2 log 0.25) / 3 = -1.0986123 + 1.1552453 = 0.0566330
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert self_certainty(logits).item() == pytest.approx(0.0566330, abs=1e-6)


def test_batched_self_certainty_matches_one_sample_at_a_time(fake_ctx, make_samples):
    policy = new_tiny_policy(0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=2)
    samples = make_samples({"12+3": ("51", ["51", "5|11", "2"]), "4*4": ("61", ["61|61"])})
    for s in samples:  # real token ids for this tokenizer
        s.completion.token_ids = policy.encode_completion(s.completion.text)
    got = sample_self_certainty(policy, samples)
    for s, sc in zip(samples, got):
        p, c = policy.encode_prompt(s.prompt.text), s.completion.token_ids
        with torch.no_grad():
            logits = policy.model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1:len(p) + len(c) - 1]
        assert sc == pytest.approx(self_certainty(logits).item(), abs=1e-5)
    assert len(set(round(x, 6) for x in got)) == 4 and all(x > 0 for x in got)
    scored = self_certainty_feedback(samples, SelfCertaintyConfig(), fake_ctx(policy=policy))
    assert [s.reward for s in scored] == pytest.approx(got) and scored[0].correct is True
    assert not math.isnan(scored[0].scores["self_certainty"])
