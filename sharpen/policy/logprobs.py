"""Token log-probs without a full float32 [B, L, V] tensor: gather, then logsumexp in chunks.

Every objective differentiates log p(y_t | x, y_<t) of the completion tokens. The naive
way, log_softmax over the whole [B, L, V] logits in float32, costs B*L*V*4 bytes twice
(with its gradient): 16 x 100 tokens x 49,152 (SmolLM2) is 315 MB a copy, and Qwen's
151,936 vocabulary triples it. Here the LM head runs on `chunk` positions at a time, each
under activation checkpointing, so at most one [chunk, V] block of logits is alive, in the
forward and in the backward; only completion positions are computed at all.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

DEFAULT_CHUNK = 1024  # positions per LM-head block: 1024 x 49,152 fp32 is 200 MB


def _block(head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor, inv_t: float,
           vocab_mean: bool) -> tuple[Tensor, Tensor]:
    logits = head(hidden).float() * inv_t
    lse = torch.logsumexp(logits, dim=-1)
    target_lp = logits.gather(-1, targets[:, None]).squeeze(-1) - lse
    mean_lp = logits.mean(-1) - lse if vocab_mean else target_lp.new_zeros(())
    return target_lp, mean_lp


def chunked_token_logprobs(head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor,
                           temperature: float = 1.0, chunk: int = DEFAULT_CHUNK,
                           vocab_mean: bool = False) -> tuple[Tensor, Tensor | None]:
    """log softmax(head(hidden) / T)[target] per row of `hidden` [N, H] / `targets` [N].

    With `vocab_mean`, also mean_j log p_j per row (what self-certainty needs:
    KL(U || p) = -log V - mean_j log p_j). Differentiable; blocks are recomputed in the
    backward instead of kept when gradients are on.
    """
    inv_t = 1.0 / temperature if temperature > 0 else 1.0
    outs, means = [], []
    grad = torch.is_grad_enabled() and hidden.requires_grad
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start:start + chunk], targets[start:start + chunk]
        if grad:
            lp, mean = checkpoint(_block, head, h, t, inv_t, vocab_mean, use_reentrant=False)
        else:
            lp, mean = _block(head, h, t, inv_t, vocab_mean)
        outs.append(lp)
        means.append(mean)
    if not outs:
        empty = hidden.new_zeros((0,), dtype=torch.float32)
        return empty, (empty if vocab_mean else None)
    return torch.cat(outs), (torch.cat(means) if vocab_mean else None)
