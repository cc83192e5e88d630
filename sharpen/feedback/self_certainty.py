"""Self-certainty reward (Intuitor, Zhao et al. 2025): how far the model's
next-token distributions are from uniform along its own sample.

    SC(o|q) = 1/|o| sum_t KL(U || pi(.|q, o_<t)) = -log V - 1/(|o| V) sum_t sum_j log pi(j|q, o_<t)

It needs the mean log-prob over the whole vocabulary at every position, which
`Policy.vocab_mean_logprobs` computes alongside the chunked log-softmax. Computed by the current policy (online), which the paper found is not exploited where a
frozen scorer was.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch

from sharpen.feedback.verifier import relabel, verify
from sharpen.feedback.base import FeedbackConfig
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Sample, Scored


def self_certainty(logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(U || softmax(logits)); logits [T, V] -> scalar."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return (-math.log(logits.shape[-1]) - logp.mean(-1)).mean()


def sample_self_certainty(policy: Any, samples: list[Sample], batch_size: int = 64) -> list[float]:
    """SC of each sample under `policy`, over the positions that predict its tokens (eos
    included), in batches through the policy's log-prob API (device-aware, chunked head)."""
    out: list[float] = []
    vocab = policy.vocab_size()
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        mean_lp, mask = policy.vocab_mean_logprobs(policy.encode_prompts([s.prompt.text for s in chunk]),
                                                   [list(s.completion.token_ids) for s in chunk])
        mean_lp, mask = mean_lp.float().cpu(), mask.float().cpu()
        counts = mask.sum(-1)
        sc = (-math.log(vocab) - (mean_lp * mask).sum(-1) / counts.clamp(min=1.0)) * (counts > 0)
        out += sc.tolist()
    return out


class SelfCertaintyConfig(FeedbackConfig):
    """Reward = the current policy's self-certainty along the sample (label-free)."""

    default_threshold: ClassVar[float | None] = None  # unbounded: audited against its prompt's mean
    kind: Literal["self_certainty"] = "self_certainty"


@FEEDBACK.register("self_certainty", SelfCertaintyConfig)
def self_certainty_feedback(samples: list[Sample], cfg: SelfCertaintyConfig, ctx: Context) -> list[Scored]:
    """Intuitor: reward = mean KL(uniform || p) over the sample's tokens, by the current policy."""
    rewards = sample_self_certainty(ctx.policy, samples)
    return relabel(verify(samples, ctx.task), rewards, "self_certainty")
