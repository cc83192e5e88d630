"""Supervised fine-tuning on kept samples: the M-step of STaR, ReST-EM and RFT.

Hand-written rather than TRL's SFTTrainer: the round's data is a few hundred short
examples on a tiny model, and the SFTTrainer owns dataset loading, its own optimizer and
logging; this loss is one line over `policy.token_logprobs`.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from sharpen.objectives.trainer import TrainConfig, require, train
from sharpen.registry import OBJECTIVES
from sharpen.types import Context, SFTExample


def sft_loss(logprobs: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood over completion tokens, optionally weighted per example.

        L = - sum_i w_i sum_t log p(y_it | x_i, y_i<t) / sum_i w_i |y_i|

    With w = 1 this is the token mean (TRL's SFT loss); `logprobs`, `mask` are [B, L].
    """
    mask = mask.to(logprobs.dtype)
    w = torch.ones(logprobs.shape[0], dtype=logprobs.dtype, device=logprobs.device) if weights is None \
        else weights.to(logprobs.device, logprobs.dtype)
    tokens = (mask.sum(-1) * w).sum().clamp(min=1e-8)
    return -((logprobs * mask).sum(-1) * w).sum() / tokens


class SFTConfig(TrainConfig):
    """SFT on the builder's examples (rejection-sampled, best-of-n, or gold references)."""

    kind: Literal["sft"] = "sft"
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (a fresh optimizer each round)")


@OBJECTIVES.register("sft", SFTConfig)
def sft(policy: Any, data: list[SFTExample], cfg: SFTConfig, ctx: Context) -> dict[str, float]:
    """Supervised fine-tuning: maximise log p(completion | prompt) on the kept examples."""
    require(data, SFTExample, "sft", "sft, best_of_n or reference")
    items = [(policy.encode_prompt(e.prompt), policy.encode_completion(e.completion), e.weight) for e in data]

    def loss_fn(batch: list[tuple[list[int], list[int], float]]) -> tuple[Tensor, dict[str, float]]:
        prompts, completions, weights = zip(*batch)
        logprobs, mask = policy.token_logprobs(list(prompts), list(completions))
        w = torch.tensor(weights, device=logprobs.device)
        # the loss is a token mean: micro-batches accumulate by their weighted token counts
        count = float(sum(len(c) * wi for c, wi in zip(completions, weights)))
        return sft_loss(logprobs, mask, w), {}, count

    return train(policy, items, loss_fn, cfg, ctx, "sft")
