"""RL groups: a prompt's G samples with group-relative advantages (GRPO, Dr. GRPO, RLOO).

Advantages are computed here, before the loss, as TRL's GRPOTrainer does. Groups whose
rewards are all equal have zero advantage everywhere and give no policy gradient, so
they are dropped and counted (DAPO's dynamic-sampling filter).
"""
from __future__ import annotations

import math
from typing import Any, Literal, Sequence

from pydantic import Field

from sharpen.builders.by_prompt import by_prompt
from sharpen.builders.base import BuildConfig
from sharpen.registry import BUILDERS
from sharpen.types import Built, RLGroup, Scored


def group_advantages(rewards: Sequence[float], scale: Literal["std", "none"] = "std", eps: float = 1e-4) -> list[float]:
    """GRPO: A_i = (r_i - mean(r)) / (std(r) + eps); Dr. GRPO (scale="none"): A_i = r_i - mean(r).

    std is Bessel-corrected (ddof 1) and eps = 1e-4, as TRL's `nanstd` and
    `advantages / (std_rewards + 1e-4)` (grpo_trainer.py L2770, L2787; utils.py L1037-1044).
    """
    g = len(rewards)
    mean = sum(rewards) / g
    centred = [r - mean for r in rewards]
    if scale == "none":
        return centred
    std = math.sqrt(sum(c * c for c in centred) / (g - 1)) if g > 1 else 0.0
    return [c / (std + eps) for c in centred]


def rloo_advantages(rewards: Sequence[float]) -> list[float]:
    """RLOO: A_i = r_i - 1/(G-1) sum_{j != i} r_j (leave-one-out baseline; 0 for G = 1)."""
    g, total = len(rewards), sum(rewards)
    return [r - (total - r) / (g - 1) if g > 1 else 0.0 for r in rewards]


def rl_groups(scored: list[Scored], advantage: Literal["grpo", "dr_grpo", "rloo"] = "grpo",
              drop_zero_variance: bool = True) -> Built:
    """One RLGroup per prompt, carrying the sampler's token ids and log-probs (pi_old)."""
    data: list[RLGroup] = []
    dropped = 0
    for group in by_prompt(scored).values():
        rewards = [s.reward for s in group]
        if drop_zero_variance and max(rewards) == min(rewards):
            dropped += 1
            continue
        if advantage == "rloo":
            adv = rloo_advantages(rewards)
        else:
            adv = group_advantages(rewards, "std" if advantage == "grpo" else "none")
        data.append(RLGroup(
            prompt=group[0].sample.prompt.text,
            completions=[s.sample.text for s in group],
            rewards=rewards,
            advantages=adv,
            old_logprobs=[list(s.sample.completion.logprobs) for s in group],
            completion_ids=[list(s.sample.completion.token_ids) for s in group],
        ))
    return Built(data, {"groups": len(data), "kept": sum(len(g.completions) for g in data),
                        "dropped_zero_variance": dropped})


class GroupsConfig(BuildConfig):
    """RL groups with group-relative advantages, for the grpo objective."""

    kind: Literal["groups"] = "groups"
    advantage: Literal["grpo", "dr_grpo", "rloo"] = Field(
        "grpo", description="grpo: (r - mean) / (std + 1e-4); dr_grpo: r - mean; rloo: r - mean of the others")
    drop_zero_variance: bool = Field(True, description="drop groups whose rewards are all equal (they give no gradient)")


@BUILDERS.register("groups", GroupsConfig)
def groups(scored: list[Scored], cfg: GroupsConfig, ctx: Any) -> Built:
    """RL groups: each prompt's samples with group-relative advantages; zero-variance groups dropped."""
    return rl_groups(scored, cfg.advantage, cfg.drop_zero_variance)
