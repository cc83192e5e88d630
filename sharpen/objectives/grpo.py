"""GRPO and Dr. GRPO on RL groups: clipped token ratios, k3 KL, two normalisers.

Why the loss is written here instead of calling TRL: in TRL 1.16 the GRPO loss exists only
inside `GRPOTrainer._compute_loss` (trl/trainer/grpo_trainer.py L3020-3292), a method that
also runs the forward pass and reads a batch produced by the trainer's own generation and
reward loop; there is no standalone loss to import. The body below reproduces its lines
for loss_type "grpo"/"dr_grpo" with token-level ratios (cited inline), and
tests/objectives/test_grpo_loss.py checks it against `GRPOTrainer._compute_loss` itself.
Advantages come from the builder (sharpen/builders/groups.py), as TRL computes them before
the loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal

import torch
from pydantic import Field
from torch import Tensor

from sharpen.objectives.trainer import TrainConfig, require, train
from sharpen.registry import OBJECTIVES
from sharpen.types import Context, RLGroup


def grpo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    ref_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    beta: float = 0.04,
    normalizer: Literal["sequence", "constant"] = "sequence",
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The clipped surrogate with a k3 KL penalty, as a loss to minimise. Shapes: [B, L], A: [B].

        rho_it = pi(o_it) / pi_old(o_it)
        l_it   = -min(rho_it A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) A_i) + beta KL_it
        KL_it  = pi_ref/pi - log(pi_ref/pi) - 1                                  (k3)
        sequence (GRPO):    L = 1/B sum_i 1/|o_i| sum_t l_it
        constant (Dr. GRPO): L = 1/(B * max_len) sum_i sum_t l_it

    TRL: ratio L3095, k3 KL L3100-3102, clipped min L3113-3120, KL added L3150, GRPO
    normaliser L3153-3154, Dr. GRPO normaliser L3163-3164 (max_len = max_completion_length),
    clip fraction as its clip_ratio/region_mean L3274-3276.
    """
    mask = mask.to(logprobs.dtype)
    a = advantages.to(logprobs.dtype).unsqueeze(1)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    per_token = -torch.min(ratio * a, clipped * a)
    n_tokens = mask.sum().clamp(min=1.0)
    stats: dict[str, float] = {}
    if beta != 0.0:
        if ref_logprobs is None:
            raise ValueError("beta != 0 needs ref_logprobs")
        kl = torch.exp(ref_logprobs - logprobs) - (ref_logprobs - logprobs) - 1
        per_token = per_token + beta * kl
        stats["kl"] = ((kl.detach() * mask).sum() / n_tokens).item()
    if normalizer == "sequence":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif normalizer == "constant":
        if not max_len:
            raise ValueError("normalizer='constant' needs max_len")
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_len)
    else:
        raise ValueError(f"unknown normalizer {normalizer!r}; one of sequence, constant")
    with torch.no_grad():  # TRL's clip_ratio/region_mean: tokens whose clipped side is the active one
        region = ((ratio < 1 - eps_low) & (a < 0)) | ((ratio > 1 + eps_high) & (a > 0))
        stats["clip_fraction"] = ((region.to(mask.dtype) * mask).sum() / n_tokens).item()
        stats["ratio"] = ((ratio * mask).sum() / n_tokens).item()
    return loss, stats


class GRPOConfig(TrainConfig):
    """Group-relative policy optimisation on the builder's RL groups (on-policy by default)."""

    kind: Literal["grpo"] = "grpo"
    lr: float = Field(1e-4, gt=0, description="AdamW learning rate (a fresh optimizer each round)")
    batch_size: int = Field(16, gt=0, description="groups (prompts) per optimizer step")
    beta: float = Field(0.04, ge=0, description="k3 KL penalty to the reference (DeepSeekMath 0.04; 0 skips the reference)")
    epsilon: float = Field(0.2, gt=0, lt=1, description="ratio clip: [1 - epsilon, 1 + epsilon_high]")
    epsilon_high: float | None = Field(None, gt=0, description="upper clip (DAPO's clip-higher, e.g. 0.28); None: epsilon")
    loss_type: Literal["grpo", "dr_grpo"] = Field(
        "grpo", description="grpo: mean over each sequence's tokens; dr_grpo: token sum / (G * max_len)")
    max_len: int | None = Field(None, gt=0, description="dr_grpo's constant (TRL: max_completion_length; set it to sample.max_new_tokens); None: the round's longest completion")
    reference: Literal["base", "last"] = Field("base", description="KL reference: the run's start ('base') or this round's start ('last')")
    temperature: float = Field(1.0, gt=0, description="must equal sample.temperature: old log-probs are at that temperature, so new ones must be too")


@dataclass
class _Group:
    """One RLGroup, tokenised, with its reference log-probs once scored."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    old_logprobs: list[list[float]]
    advantages: list[float]
    ref_logprobs: list[list[float]] | None = None


def _padded(rows: list[list[float]], width: int) -> Tensor:
    return torch.tensor([r[:width] + [0.0] * (width - len(r)) for r in rows])


def _flat(groups: list[_Group], field: str) -> list[Any]:
    return [row for g in groups for row in getattr(g, field)]


def _score(model: Any, groups: list[_Group], step: int, temperature: float) -> Iterator[tuple[_Group, list[list[float]]]]:
    """(group, per-completion token log-probs) under `model`, no grad, `step` groups per forward."""
    for start in range(0, len(groups), step):
        chunk = groups[start:start + step]
        with torch.no_grad():
            lp, _ = model.token_logprobs(_flat(chunk, "prompt_ids"), _flat(chunk, "completion_ids"), temperature=temperature)
        rows = iter(lp.float().cpu().tolist())
        for g in chunk:
            yield g, [next(rows) for _ in g.completion_ids]


@OBJECTIVES.register("grpo", GRPOConfig)
def grpo(policy: Any, data: list[RLGroup], cfg: GRPOConfig, ctx: Context) -> dict[str, float]:
    """GRPO / Dr. GRPO: clipped policy-gradient steps on group-normalised advantages."""
    require(data, RLGroup, "grpo", "groups")
    max_len = cfg.max_len or max((len(ids) for g in data for ids in g.completion_ids), default=1)
    groups = [_Group([policy.encode_prompt(g.prompt)] * len(g.completion_ids), g.completion_ids, g.old_logprobs,
                     g.advantages) for g in data]
    step = cfg.micro_batch_size or cfg.batch_size
    if ctx.engine is not None and not ctx.engine.syncs_weights:
        # the engine sampled another model's weights (an OpenAI-compatible server): its
        # log-probs are not pi_old of this policy, so recompute them with the trainer
        for g, rows in _score(policy, groups, step, cfg.temperature):
            g.old_logprobs = [row[:len(ids)] for row, ids in zip(rows, g.completion_ids)]
    ref = ctx.reference(cfg.reference) if cfg.beta else None
    if ref is not None:  # the reference is fixed for the round: score it once
        for g, rows in _score(ref, groups, step, cfg.temperature):
            g.ref_logprobs = rows

    def loss_fn(batch: list[_Group]) -> tuple[Tensor, dict[str, float]]:
        logprobs, mask = policy.token_logprobs(_flat(batch, "prompt_ids"), _flat(batch, "completion_ids"),
                                               temperature=cfg.temperature)
        width, dev = logprobs.shape[1], logprobs.device
        old = _padded(_flat(batch, "old_logprobs"), width).to(dev)
        ref_lp = _padded(_flat(batch, "ref_logprobs"), width).to(dev) if ref is not None else None
        loss, stats = grpo_loss(logprobs, old, ref_lp, torch.tensor(_flat(batch, "advantages"), device=dev), mask,
                                eps_low=cfg.epsilon, eps_high=cfg.epsilon_high or cfg.epsilon, beta=cfg.beta,
                                normalizer="sequence" if cfg.loss_type == "grpo" else "constant", max_len=max_len)
        return loss, stats, logprobs.shape[0]  # both normalisers are means over sequences

    return train(policy, groups, loss_fn, cfg, ctx, "grpo")
