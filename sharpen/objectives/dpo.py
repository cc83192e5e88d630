"""DPO and IPO on preference pairs, with RPO's NLL term; SPIN and DNO train with this too.

Why the loss is written here instead of calling TRL: in TRL 1.16 the DPO losses exist
only inside `DPOTrainer._compute_loss` (trl/trainer/dpo_trainer.py L1285-1612), a method
that runs the model forward itself on a collated HF dataset batch and logs through the
Trainer/accelerate machinery; there is no standalone loss function to import. The
formulas below reproduce its lines (cited per loss), and tests/objectives/test_dpo_loss.py
checks them against `DPOTrainer._compute_loss` itself, run with a mocked model.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from sharpen.errors import UserError
from sharpen.objectives.sft import sft_loss
from sharpen.objectives.trainer import TrainConfig, require, train
from sharpen.registry import OBJECTIVES
from sharpen.types import Context, PreferencePair


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float,
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
    label_smoothing: float | Tensor = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pair losses and the implicit rewards beta * (logp - logp_ref) of each side.

        h = (logp(y_w) - logp_ref(y_w)) - (logp(y_l) - logp_ref(y_l))
        sigmoid (DPO):  L = -(1 - e) log sig(beta h) - e log sig(-beta h)
        ipo (IPO Eq.17): L = (h - 1 / (2 beta))^2

    sigmoid with e = 0 is TRL's `-F.logsigmoid(self.beta * delta_score)` (dpo_trainer.py
    L1387-1388); e > 0 is conservative DPO (Mitchell, 2023), which TRL 1.16 keeps only in
    its `robust`/`aot` losses. For ipo, pass log-probs *averaged over completion tokens*:
    TRL divides each side's summed log-ratio by its completion length before squaring
    (dpo_trainer.py L1393-1404, confirmed with the IPO authors per its comment).
    Rewards are as TRL logs them (L1582-1583): beta times each side's log-ratio.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "ipo":
        if label_smoothing:
            raise ValueError("label_smoothing applies to loss_type='sigmoid' only")
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; one of sigmoid, ipo")
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


class DPOConfig(TrainConfig):
    """Preference optimisation on (chosen, rejected) pairs against a frozen reference."""

    kind: Literal["dpo"] = "dpo"
    lr: float = Field(1e-4, gt=0, description="AdamW learning rate (a fresh optimizer each round)")
    beta: float = Field(0.1, gt=0, description="KL strength: DPO's beta, IPO's tau (SPIN's lambda)")
    loss_type: Literal["sigmoid", "ipo"] = Field("sigmoid", description="sigmoid: DPO; ipo: squared loss on per-token log-ratios")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="conservative DPO: assumed label-flip rate (sigmoid only)")
    reference: Literal["base", "last"] = Field(
        "last", description="frozen reference: 'last' = the policy at the start of this round (iterative DPO, SPIN, DNO); 'base' = the run's start")
    rpo_alpha: float | None = Field(None, ge=0, description="RPO: add alpha * mean NLL of the chosen tokens")

    @model_validator(mode="after")
    def _smoothing_is_sigmoid_only(self) -> "DPOConfig":
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError("label_smoothing applies to loss_type: sigmoid only; set it to 0")
        return self


def _sequence_logps(policy: Any, prompts: list[list[int]], completions: list[list[int]]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Summed completion log-probs and token counts (one forward), plus the per-token view."""
    logprobs, mask = policy.token_logprobs(prompts, completions)
    mask = mask.to(logprobs.dtype)
    return (logprobs * mask).sum(-1), mask.sum(-1).clamp(min=1.0), logprobs, mask


@OBJECTIVES.register("dpo", DPOConfig)
def dpo(policy: Any, data: list[PreferencePair], cfg: DPOConfig, ctx: Context) -> dict[str, float]:
    """Direct preference optimisation (DPO/IPO, + RPO's NLL) against a frozen reference."""
    require(data, PreferencePair, "dpo", "pairs or spin_pairs")
    ref = ctx.reference(cfg.reference)
    if cfg.loss_type == "ipo" and any(p.confidence < 1.0 for p in data):
        raise UserError("objective.loss_type: ipo cannot weight pairs by confidence (CREAM); use loss_type: sigmoid")
    enc = [(policy.encode_prompt(p.prompt), policy.encode_completion(p.chosen), policy.encode_completion(p.rejected))
           for p in data]
    confidence = [p.confidence for p in data]
    items = []
    with torch.no_grad():  # the reference is fixed for the round: score it once
        for start in range(0, len(enc), cfg.micro_batch_size or cfg.batch_size):  # no-grad scoring, micro-batched
            chunk = enc[start:start + (cfg.micro_batch_size or cfg.batch_size)]
            prompts = [e[0] for e in chunk] * 2
            ref_logps, _, _, _ = _sequence_logps(ref, prompts, [e[1] for e in chunk] + [e[2] for e in chunk])
            ref_c, ref_r = ref_logps.chunk(2)
            items += [(*e, float(c), float(r), conf) for e, c, r, conf in
                      zip(chunk, ref_c, ref_r, confidence[start:start + len(chunk)])]

    def loss_fn(batch: list[tuple[Any, ...]]) -> tuple[Tensor, dict[str, float]]:
        prompt_ids, chosen_ids, rejected_ids, ref_c, ref_r, conf = zip(*batch)
        logps, n_tokens, logprobs, mask = _sequence_logps(policy, list(prompt_ids) * 2, list(chosen_ids) + list(rejected_ids))
        chosen, rejected = logps.chunk(2)
        ref_chosen, ref_rejected = torch.tensor(ref_c, device=logps.device), torch.tensor(ref_r, device=logps.device)
        if cfg.loss_type == "ipo":  # IPO compares per-token log-ratios (see dpo_loss)
            n_chosen, n_rejected = n_tokens.chunk(2)
            args = (chosen / n_chosen, rejected / n_rejected, ref_chosen / n_chosen, ref_rejected / n_rejected)
        else:
            args = (chosen, rejected, ref_chosen, ref_rejected)
        smoothing: Any = cfg.label_smoothing
        if any(c < 1.0 for c in conf):  # CREAM: C * DPO(w, l) + (1 - C) * DPO(l, w)
            smoothing = torch.tensor([max(cfg.label_smoothing, 1.0 - c) for c in conf], device=logps.device)
        losses, chosen_rewards, rejected_rewards = dpo_loss(*args, beta=cfg.beta, loss_type=cfg.loss_type,
                                                            label_smoothing=smoothing)
        loss = losses.mean()
        margin = chosen_rewards - rejected_rewards
        stats = {"reward_margin": float(margin.mean()), "reward_accuracy": float((margin > 0).float().mean()),
                 "chosen_logp": chosen.detach().mean().item(), "rejected_logp": rejected.detach().mean().item()}
        if cfg.rpo_alpha is not None:  # RPO: L_DPO + alpha * NLL(y_w), TRL's "sft" term (dpo_trainer.py L1495-1498)
            half = len(batch)
            nll = sft_loss(logprobs[:half], mask[:half])
            loss = loss + cfg.rpo_alpha * nll
            stats["chosen_nll"] = nll.detach().item()
        return loss, stats

    return train(policy, items, loss_fn, cfg, ctx, "dpo")
