import math

import pytest
import torch

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.judge import JudgeConfig, judge, rewards_from
from sharpen.policy import new_tiny_policy
from sharpen.tasks import make_task


class StubJudge:
    """A PolicyModel-like judge whose next-token distribution is known: ids by character."""

    def __init__(self, probs):
        self.probs = probs  # char -> probability
        self.asked = []

    def encode_completion(self, text, eos=True):
        return [ord(text[0])]

    def encode_prompts(self, texts):
        return [[1] for _ in texts]

    def next_token_logprobs(self, prompt_ids, candidates):
        self.asked.append(list(candidates))
        return torch.log(torch.tensor([[self.probs.get(chr(c), 1e-12) for c in candidates]] * len(prompt_ids)))


def test_p_yes_is_read_from_the_verdict_tokens(fake_ctx, make_samples):
    ctx = fake_ctx(policy=StubJudge({"y": 0.3, "Y": 0.1, "n": 0.2, "N": 0.0, "z": 0.4}))
    ctx.task.judge_verdicts = (("yes", "Yes"), ("no", "No"))
    ctx.task.judge_prompt = lambda p, c: p.text + c
    rated = judge(make_samples({"a": ("7", ["x|7"])}), JudgeConfig(), ctx)
    # (0.3 + 0.1) / (0.3 + 0.1 + 0.2): both yes variants summed; 'z' is not a verdict
    assert rated.scored[0].reward == pytest.approx(0.4 / 0.6)
    assert rated.stats["verdict_mass"] == pytest.approx(0.6, rel=1e-5)
    assert sorted(ctx.policy.asked[0]) == sorted(map(ord, "yYnN"))


def test_expected_score_over_score_tokens():
    probs = torch.tensor([[0.1, 0.0, 0.2, 0.0, 0.2]])  # scores 1..5, mass 0.5
    r, mass = rewards_from(probs, JudgeConfig(mode="expected_score"))
    # E[k] over k = 0..4 = (0 * 0.2 + 2 * 0.4 + 4 * 0.4) = 2.4 -> 2.4 / 4
    assert r[0] == pytest.approx(0.6) and mass[0] == pytest.approx(0.5)
    assert rewards_from(torch.zeros(1, 2), JudgeConfig())[0] == [0.5]  # no verdict mass: no opinion


def test_tiny_policy_judges_in_the_arithmetic_format(fake_ctx, make_samples):
    policy = new_tiny_policy(0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=2)
    task = make_task({"name": "arithmetic"})
    ctx = fake_ctx(policy=policy)
    ctx.task = task
    prompt = task.prompts("eval", 2)
    samples = make_samples({})
    from sharpen.types import Completion, Sample
    samples = [Sample(p, Completion(p.reference, [], [], True), 0) for p in prompt]
    rated = judge(samples, JudgeConfig(), ctx)
    texts = [task.judge_prompt(s.prompt, s.text) for s in samples]
    ids = policy.encode_prompts(texts)
    y, n = policy.encode_completion("y", eos=False)[0], policy.encode_completion("n", eos=False)[0]
    for s, i in zip(rated.scored, ids):
        with torch.no_grad():
            lp = torch.log_softmax(policy.model(input_ids=torch.tensor([i])).logits[0, -1], -1)
        assert s.reward == pytest.approx(math.exp(lp[y]) / (math.exp(lp[y]) + math.exp(lp[n])), abs=1e-5)
        assert s.correct is True


def test_judge_recipe_validation():
    rec = load_recipe("self_rewarding")
    assert rec.feedback.kind == "judge" and rec.feedback.model == "policy"
    with pytest.raises(UserError, match="feedback.mode"):
        load_recipe("self_rewarding", ["feedback.mode=sampled"])
    with pytest.raises(UserError, match="base_url"):
        load_recipe("self_rewarding", ["feedback.model=openai"])
