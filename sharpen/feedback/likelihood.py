"""Self-reward by sequence likelihood: the sharpening view's canonical r_self = log pi(y|x).

Label-free: the reward is the model's own confidence in the whole sample. With the
best_of_n builder this is SFT-sharpening; `correct` is still recorded from the task so a
run can see whether confidence tracks correctness.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from sharpen.feedback.verifier import relabel, verify
from sharpen.feedback.base import FeedbackConfig
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Sample, Scored


def sequence_logprobs(policy: Any, samples: list[Sample], normalize: bool = False, batch_size: int = 64) -> list[float]:
    """sum_t log pi(y_t | x, y_<t) at temperature 1 over each sample's tokens (as sampled, eos
    included); `normalize` divides by the token count (mean per-token log-prob)."""
    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            logprobs, mask = policy.token_logprobs(policy.encode_prompts([s.prompt.text for s in chunk]),
                                                   [list(s.completion.token_ids) for s in chunk])
            logprobs, mask = logprobs.float().cpu(), mask.float().cpu()
            total = (logprobs * mask).sum(-1)
            out += (total / mask.sum(-1).clamp(min=1.0) if normalize else total).tolist()
    return out


class LikelihoodConfig(FeedbackConfig):
    """Reward = the model's own log-likelihood of the sample (label-free)."""

    default_threshold: ClassVar[float | None] = None  # unbounded: audited against its prompt's mean
    kind: Literal["likelihood"] = "likelihood"
    normalize: bool = Field(False, description="mean per-token log-prob instead of the sum (removes the bias toward short samples)")
    model: Literal["policy", "base"] = Field(
        "policy", description="whose likelihood: the current policy, or the run's starting model (log pi_base)")
    batch_size: int = Field(64, gt=0, description="samples per forward pass")


@FEEDBACK.register("likelihood", LikelihoodConfig)
def likelihood(samples: list[Sample], cfg: LikelihoodConfig, ctx: Context) -> list[Scored]:
    """Sharpening self-reward: the sample's sequence log-likelihood under the model."""
    model = ctx.policy if cfg.model == "policy" else ctx.reference("base")
    rewards = sequence_logprobs(model, samples, cfg.normalize, cfg.batch_size)
    return relabel(verify(samples, ctx.task), rewards, "likelihood")
