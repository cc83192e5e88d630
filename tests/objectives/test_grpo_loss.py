import copy
import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from sharpen.objectives.grpo import GRPOConfig, grpo, grpo_loss
from sharpen.types import RLGroup
from sharpen.engines.hf import sample

# Two sequences, old log-probs 0, so rho = exp(logprobs):
#   seq 1 (A = +1): rho = [1.5, 0.9]  -> per-token -min(rho A, clip(rho) A) = [-1.2, -0.9]
#   seq 2 (A = -1): rho = [0.5, pad]  -> -min(-0.5, -0.8) = 0.8
RATIOS = torch.tensor([[1.5, 0.9], [0.5, 1.0]])
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
ADV = torch.tensor([1.0, -1.0])


def _lp():
    return torch.log(RATIOS).clone().requires_grad_()


def test_grpo_and_dr_grpo_by_hand():
    old = torch.zeros(2, 2)
    loss, stats = grpo_loss(_lp(), old, None, ADV, MASK, beta=0.0)
    assert loss.item() == pytest.approx(((-1.2 - 0.9) / 2 + 0.8 / 1) / 2)  # = -0.125
    assert stats["clip_fraction"] == pytest.approx(2 / 3)  # tokens 1.5 (A>0) and 0.5 (A<0) are clipped
    loss, _ = grpo_loss(_lp(), old, None, ADV, MASK, beta=0.0, normalizer="constant", max_len=4)
    assert loss.item() == pytest.approx((-1.2 - 0.9 + 0.8) / (2 * 4))  # = -0.1625


def test_clipped_tokens_get_no_gradient():
    lp = _lp()
    grpo_loss(lp, torch.zeros(2, 2), None, ADV, MASK, beta=0.0)[0].backward()
    assert lp.grad[0, 0] == 0 and lp.grad[1, 0] == 0  # ratio left [0.8, 1.2] on the clipped side
    assert lp.grad[0, 1] == pytest.approx(-0.9 / 2 / 2)  # d(-rho A)/d lp = -rho A, times 1/|o_1| * 1/B


def test_k3_kl_by_hand_and_zero_when_policy_is_reference():
    lp = torch.zeros(1, 1)
    ref = torch.full((1, 1), math.log(2.0))  # pi_ref / pi = 2: KL = 2 - log 2 - 1 = 0.3068528
    loss, stats = grpo_loss(lp, lp, ref, torch.zeros(1), torch.ones(1, 1), beta=0.5)
    assert stats["kl"] == pytest.approx(0.3068528, abs=1e-6)
    assert loss.item() == pytest.approx(0.5 * 0.3068528, abs=1e-6)
    lp = torch.log(RATIOS)
    with_kl, stats = grpo_loss(lp, torch.zeros(2, 2), lp, ADV, MASK, beta=0.04)
    assert stats["kl"] == 0.0
    assert with_kl.item() == pytest.approx(grpo_loss(lp, torch.zeros(2, 2), None, ADV, MASK, beta=0.0)[0].item())


def test_grpo_normaliser_down_weights_long_sequences_and_dr_grpo_does_not():
    # on-policy (rho = 1), same advantage, lengths 1 and 4: per-token gradient of each sequence
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 1, 1]])
    for normalizer, expected in [("sequence", 4.0), ("constant", 1.0)]:
        lp = torch.zeros(2, 4, requires_grad=True)
        grpo_loss(lp, torch.zeros(2, 4), None, torch.tensor([1.0, 1.0]), mask, beta=0.0,
                  normalizer=normalizer, max_len=4)[0].backward()
        assert (lp.grad[0, 0] / lp.grad[1, 0]).item() == pytest.approx(expected)


# --- against TRL's own GRPOTrainer._compute_loss, run with mocks -------------------------
def _trl_grpo_loss(logprobs, old, ref, adv, mask, loss_type, beta, max_len):
    from trl.trainer.grpo_trainer import GRPOTrainer

    B, L = logprobs.shape
    acc = SimpleNamespace(gather=lambda x: x, reduce=lambda x, reduction="sum": x)
    fake = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logprobs, torch.zeros(B, L), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None), loss_type=loss_type, epsilon_low=0.2,
        epsilon_high=0.28, use_vllm=False, model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=max_len, _entropy_bonus_enabled=False, aux_loss_enabled=False, accelerator=acc,
        _metrics=defaultdict(lambda: defaultdict(list)))
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.zeros(B, L, dtype=torch.long), "completion_mask": mask.long(),
              "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref}
    loss = GRPOTrainer._compute_loss(fake, None, inputs)
    return loss, fake._metrics["train"]


@pytest.mark.parametrize("loss_type,normalizer", [("grpo", "sequence"), ("dr_grpo", "constant")])
def test_grpo_loss_matches_trl_grpo_trainer(loss_type, normalizer):
    g = torch.Generator().manual_seed(0)
    B, L = 4, 6
    mask = torch.ones(B, L)
    for i, n in enumerate([6, 2, 4, 1]):
        mask[i, n:] = 0
    old = -torch.rand(B, L, generator=g) * 2
    lp = old + torch.randn(B, L, generator=g) * 0.3  # ratios spread across both clip edges
    ref = old + torch.randn(B, L, generator=g) * 0.3
    adv = torch.tensor([1.2, -0.4, 0.7, -1.5])
    trl, metrics = _trl_grpo_loss(lp, old, ref, adv, mask, loss_type, beta=0.04, max_len=8)
    ours, stats = grpo_loss(lp, old, ref, adv, mask, eps_low=0.2, eps_high=0.28, beta=0.04,
                            normalizer=normalizer, max_len=8)
    assert ours.item() == pytest.approx(trl.item(), rel=1e-6)
    assert stats["kl"] == pytest.approx(metrics["kl"][0], rel=1e-6)
    assert stats["clip_fraction"] == pytest.approx(metrics["clip_ratio/region_mean"][0], rel=1e-6)
    assert 0 < stats["clip_fraction"] < 1


# --- training smoke test on a tiny model -------------------------------------------------
COMPLETIONS = ["46", "99", "5", "81"]


def _group(policy, temperature):
    p = policy.encode_prompt("12+34=")
    ids = [policy.encode_completion(c) for c in COMPLETIONS]
    with torch.no_grad():
        lp, mask = policy.token_logprobs([p] * 4, ids, temperature=temperature)
    old = [row[: len(c)].tolist() for row, c in zip(lp, ids)]
    return RLGroup("12+34=", COMPLETIONS, [1, 0, 1, 0], [1.0, -1.0, 1.0, -1.0], old, ids)


def _advantage_weighted_logp(policy, group):
    p = policy.encode_prompt(group.prompt)
    with torch.no_grad():
        lp, mask = policy.token_logprobs([p] * 4, group.completion_ids)
    return sum(a * s for a, s in zip(group.advantages, (lp * mask).sum(1).tolist()))


def test_grpo_on_policy_first_step_has_unit_ratio_at_the_sampling_temperature(tiny_policy, make_ctx):
    group = _group(tiny_policy, temperature=0.7)
    cfg = GRPOConfig(lr=1e-3, temperature=0.7, batch_size=1)
    stats = grpo(copy.deepcopy(tiny_policy), [group], cfg, make_ctx(tiny_policy))
    assert stats["ratio"] == pytest.approx(1.0, abs=1e-5) and stats["clip_fraction"] == 0.0
    wrong = grpo(copy.deepcopy(tiny_policy), [group], cfg.model_copy(update={"temperature": 1.0}), make_ctx(tiny_policy))
    assert abs(wrong["ratio"] - 1.0) > 1e-3  # a mismatched temperature is visible in the stats


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo"])
def test_grpo_objective_moves_probability_to_positive_advantages(tiny_policy, make_ctx, loss_type):
    group = _group(tiny_policy, temperature=1.0)
    before = _advantage_weighted_logp(tiny_policy, group)
    cfg = GRPOConfig(lr=1e-2, epochs=20, batch_size=1, loss_type=loss_type)
    stats = grpo(tiny_policy, [group], cfg, make_ctx(tiny_policy))
    assert stats["steps"] == 20 and stats["clip_fraction"] > 0 and stats["kl"] > 0
    assert _advantage_weighted_logp(tiny_policy, group) > before + 1.0


def test_sampler_logprobs_are_pi_old_for_grpo(tiny_policy, make_ctx):
    """The sampler's per-token log-probs at temperature T must equal what the objective
    recomputes at T, or the first on-policy step would already clip."""
    gen = torch.Generator().manual_seed(0)
    [completions] = sample(tiny_policy, ["12+34="], n=4, temperature=0.7, max_new_tokens=6, seed=0)
    group = RLGroup("12+34=", [c.text for c in completions], [1, 0, 1, 0], [1.0, -1.0, 1.0, -1.0],
                    [c.logprobs for c in completions], [c.token_ids for c in completions])
    stats = grpo(copy.deepcopy(tiny_policy), [group], GRPOConfig(temperature=0.7, batch_size=1), make_ctx(tiny_policy))
    assert stats["ratio"] == pytest.approx(1.0, abs=1e-4) and stats["clip_fraction"] == 0.0
