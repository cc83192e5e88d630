"""Self-certainty reward (Intuitor, Zhao et al. 2025; METHODS §5): how far the model's
next-token distributions are from uniform along its own sample.

    SC(o|q) = 1/|o| sum_t KL(U || pi(.|q, o_<t)) = -log V - 1/(|o| V) sum_t sum_j log pi(j|q, o_<t)

It needs every token's full distribution, which `Policy.token_logprobs` does not return,
so this module runs `policy.model` itself: one forward per prompt over its samples,
right-padded (causal attention never lets a real token see the pads after it).
Computed by the current policy (online), which the paper found is not exploited where a
frozen scorer was.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict

from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Sample, Scored


def self_certainty(logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(U || softmax(logits)); logits [T, V] -> scalar."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return (-math.log(logits.shape[-1]) - logp.mean(-1)).mean()


def sample_self_certainty(policy: Any, samples: list[Sample]) -> list[float]:
    """SC of each sample under `policy`, over the positions that predict its tokens (eos included)."""
    out: dict[int, float] = {}
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.prompt.id, []).append(i)
    with torch.no_grad():
        for idx in groups.values():
            prompt = policy.encode_prompt(samples[idx[0]].prompt.text)
            comps = [list(samples[i].completion.token_ids) for i in idx]
            width = max(map(len, comps))
            if width == 0:
                out.update({i: 0.0 for i in idx})
                continue
            ids = torch.tensor([prompt + c + [policy.eos_id] * (width - len(c)) for c in comps])
            logits = policy.model(input_ids=ids).logits[:, len(prompt) - 1:len(prompt) - 1 + width]
            for row, i, c in zip(logits, idx, comps):
                out[i] = float(self_certainty(row[: len(c)])) if c else 0.0
    return [out[i] for i in range(len(samples))]


class SelfCertaintyConfig(BaseModel):
    """Reward = the current policy's self-certainty along the sample (label-free)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["self_certainty"] = "self_certainty"


@FEEDBACK.register("self_certainty", SelfCertaintyConfig)
def self_certainty_feedback(samples: list[Sample], cfg: SelfCertaintyConfig, ctx: Context) -> list[Scored]:
    """Intuitor: reward = mean KL(uniform || p) over the sample's tokens, by the current policy."""
    rewards = sample_self_certainty(ctx.policy, samples)
    return relabel(verify(samples, ctx.task), rewards, "self_certainty")
