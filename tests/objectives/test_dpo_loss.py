import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from sharpen.objectives.dpo import DPOConfig, dpo, dpo_loss
from sharpen.objectives.sft import sft_loss
from sharpen.types import PreferencePair


def _t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_dpo_sigmoid_by_hand():
    # h = (-1 - -2) - (-3 - -2) = 2; beta = 0.5: loss = -log sig(1) = log(1 + e^-1) = 0.3132617
    losses, chosen_r, rejected_r = dpo_loss(_t(-1.0), _t(-3.0), _t(-2.0), _t(-2.0), beta=0.5)
    assert losses.item() == pytest.approx(0.3132617, abs=1e-6)
    assert chosen_r.item() == pytest.approx(0.5) and rejected_r.item() == pytest.approx(-0.5)
    # conservative DPO, e = 0.1: 0.9 * 0.3132617 + 0.1 * (-log sig(-1) = 1.3132617) = 0.4132617
    smoothed, _, _ = dpo_loss(_t(-1.0), _t(-3.0), _t(-2.0), _t(-2.0), beta=0.5, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(0.4132617, abs=1e-6)


def test_ipo_by_hand():
    # h = 2, beta = 0.5: (h - 1/(2*0.5))^2 = (2 - 1)^2 = 1; at h = 1/(2 beta) the loss is 0
    losses, _, _ = dpo_loss(_t(-1.0, -1.0), _t(-3.0, -2.0), _t(-2.0, -2.0), _t(-2.0, -2.0), beta=0.5, loss_type="ipo")
    assert losses.tolist() == pytest.approx([1.0, 0.0])


def test_dpo_loss_gradient_raises_chosen_and_lowers_rejected():
    pc, pr = _t(-2.0).requires_grad_(), _t(-2.0).requires_grad_()
    dpo_loss(pc, pr, _t(-2.0), _t(-2.0), beta=0.1)[0].sum().backward()
    assert pc.grad.item() < 0 < pr.grad.item()  # descent raises logp(chosen), lowers logp(rejected)


# --- against TRL's own DPOTrainer._compute_loss, run on a mocked model -------------------
def _trl_dpo_loss(per_token_logps, completion_mask, ref_chosen, ref_rejected, beta, loss_types, loss_weights):
    from trl.trainer.dpo_trainer import DPOTrainer

    n, T = completion_mask.shape
    outputs = SimpleNamespace(log_probs=per_token_logps, entropy=torch.zeros(n, T - 1),
                              mean_logits=torch.zeros(n, T - 1), is_top1=torch.zeros(n, T - 1, dtype=torch.bool))
    acc = SimpleNamespace(device="cpu", gather=lambda x: x, gather_for_metrics=lambda x: x)
    fake = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=acc, aux_loss_enabled=False, ld_alpha=None,
        precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=loss_types, loss_weights=loss_weights,
        beta=beta, use_weighting=False, label_smoothing=0.0, _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1, args=SimpleNamespace())
    inputs = {"input_ids": torch.zeros(n, T, dtype=torch.long), "attention_mask": torch.ones(n, T, dtype=torch.long),
              "completion_mask": completion_mask, "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    return DPOTrainer._compute_loss(fake, lambda **kw: outputs, inputs, return_outputs=False)


def _pairs_batch():
    """3 pairs laid out as TRL does: rows [chosen..., rejected...], prompt of 2 tokens, varied lengths."""
    g = torch.Generator().manual_seed(0)
    T = 7
    lengths = [3, 5, 1, 2, 4, 5]
    completion_mask = torch.zeros(6, T, dtype=torch.long)
    for i, n in enumerate(lengths):
        completion_mask[i, 2:2 + n] = 1
    shift = completion_mask[:, 1:].float()
    per_token = -torch.rand(6, T - 1, generator=g) * 3 * shift  # the fused head gives 0 outside labels
    ref_logps = -torch.rand(6, generator=g) * 6
    return per_token, shift, completion_mask, ref_logps


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_loss_matches_trl_dpo_trainer(loss_type):
    per_token, shift, completion_mask, ref = _pairs_batch()
    trl = _trl_dpo_loss(per_token, completion_mask, ref[:3], ref[3:], 0.1, [loss_type], [1.0])
    logps, n = per_token.sum(1), shift.sum(1)
    if loss_type == "ipo":  # IPO compares per-token log-ratios, as TRL does
        logps, ref = logps / n, ref / n
    ours = dpo_loss(logps[:3], logps[3:], ref[:3], ref[3:], beta=0.1, loss_type=loss_type)[0].mean()
    assert ours.item() == pytest.approx(trl.item(), rel=1e-6)


def test_rpo_term_matches_trl_sft_loss_type():
    per_token, shift, completion_mask, ref = _pairs_batch()
    trl = _trl_dpo_loss(per_token, completion_mask, ref[:3], ref[3:], 0.1, ["sigmoid", "sft"], [1.0, 0.5])
    logps = per_token.sum(1)
    ours = dpo_loss(logps[:3], logps[3:], ref[:3], ref[3:], beta=0.1)[0].mean() + 0.5 * sft_loss(per_token[:3], shift[:3])
    assert ours.item() == pytest.approx(trl.item(), rel=1e-6)


# --- training smoke test on a tiny model -------------------------------------------------
PAIRS = [PreferencePair("12+34=", "46", "99"), PreferencePair("5*3=", "51|51", "0"),
         PreferencePair("7-2=", "5", "6"), PreferencePair("9+9=", "81", "18")]


def _margin(policy, ref):
    def logps(pol, side):
        lp, m = pol.token_logprobs([pol.encode_prompt(p.prompt) for p in PAIRS],
                                   [pol.encode_completion(getattr(p, side)) for p in PAIRS])
        return (lp * m).sum(1)
    with torch.no_grad():
        return ((logps(policy, "chosen") - logps(ref, "chosen")) - (logps(policy, "rejected") - logps(ref, "rejected"))).mean().item()


@pytest.mark.parametrize("loss_type,rpo_alpha", [("sigmoid", None), ("ipo", None), ("sigmoid", 1.0)])
def test_dpo_objective_raises_the_margin_on_a_fixed_batch(tiny_policy, make_ctx, loss_type, rpo_alpha):
    ctx = make_ctx(tiny_policy)
    ref = ctx.reference("last")
    assert _margin(tiny_policy, ref) == pytest.approx(0.0, abs=1e-5)
    cfg = DPOConfig(lr=1e-2, epochs=20, batch_size=4, loss_type=loss_type, rpo_alpha=rpo_alpha)
    stats = dpo(tiny_policy, PAIRS, cfg, ctx)
    assert stats["steps"] == 20
    assert _margin(tiny_policy, ref) > 1.0
    assert stats["reward_accuracy"] > 0.5
    assert {"loss", "reward_margin", "chosen_logp", "rejected_logp"} <= set(stats)
    assert ("chosen_nll" in stats) == (rpo_alpha is not None)


def test_dpo_config_rejects_smoothing_with_ipo():
    with pytest.raises(ValueError, match="label_smoothing"):
        DPOConfig(loss_type="ipo", label_smoothing=0.1)
    assert math.isclose(DPOConfig().beta, 0.1) and DPOConfig().reference == "last"
