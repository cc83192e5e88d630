"""CREAM pairs (Wang et al., 2024): self-rewarding pairs trusted only as far as
this round's and the last round's rankings agree.

Best vs worst by this round's reward, as in Self-Rewarding; each pair carries a confidence
C = (Kendall tau + 1) / 2 between the prompt's ranking by this round's judge and by the
previous round's (a score named in `consistency_with`, e.g. an audit scorer
`{kind: judge, model: previous, name: judge_previous}`). DPO then trains
C * DPO(best, worst) + (1 - C) * DPO(worst, best): label smoothing 1 - C, soft where
the two iterations disagree (the released code's loss).
"""
from __future__ import annotations

import math
from typing import Any, Literal, Sequence

from pydantic import Field

from sharpen.builders.base import BuildConfig
from sharpen.builders.by_prompt import by_prompt
from sharpen.builders.pairs import preference_pairs
from sharpen.errors import UserError
from sharpen.registry import BUILDERS
from sharpen.types import Built, PreferencePair, Scored


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking shrink the denominator); nan when a ranking is constant."""
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom else float("nan")


def consistency(group: list[Scored], key: str) -> float:
    """C = (tau + 1) / 2 between the samples' rewards and their `scores[key]`; nan if undefined."""
    return (kendall_tau([s.reward for s in group], [s.scores[key] for s in group]) + 1) / 2


def cream_pairs(scored: list[Scored], key: str, per: Literal["prompt", "dataset"] = "prompt",
                min_margin: float = 0.0) -> Built:
    """Best-vs-worst pairs, each with its consistency confidence (per prompt, or the mean over
    the round; a prompt whose ranking is constant takes the round's mean)."""
    if scored and any(key not in s.scores for s in scored):
        raise UserError(f"build.consistency_with: no score {key!r} on the samples; add a scorer named {key!r} "
                        f"under feedback.audit, e.g. {{kind: judge, model: previous, name: {key}}}")
    groups = by_prompt(scored)
    per_prompt = {pid: consistency(g, key) for pid, g in groups.items()}
    known = [c for c in per_prompt.values() if not math.isnan(c)]
    mean = sum(known) / len(known) if known else 1.0
    built = preference_pairs(scored, min_margin)
    by_text = {g[0].sample.prompt.text: pid for pid, g in groups.items()}
    data = []
    for pair in built.data:
        c = per_prompt[by_text[pair.prompt]]
        conf = mean if per == "dataset" or math.isnan(c) else c
        data.append(PreferencePair(pair.prompt, pair.chosen, pair.rejected, pair.margin, confidence=conf))
    used = [p.confidence for p in data]
    return Built(data, {**built.stats, "consistency_mean": mean,
                        "confidence_mean": sum(used) / len(used) if used else None})


class CreamPairsConfig(BuildConfig):
    """Best-vs-worst pairs weighted by ranking consistency across two iterations (CREAM)."""

    kind: Literal["cream_pairs"] = "cream_pairs"
    consistency_with: str = Field("judge_previous", description="the score of the previous iteration's ranking (a feedback.audit scorer's name)")
    per: Literal["prompt", "dataset"] = Field("prompt", description="consistency per prompt, or averaged over the round (both are in the paper)")
    min_margin: float = Field(0.0, ge=0, description="keep a pair only if reward(chosen) - reward(rejected) > min_margin")


@BUILDERS.register("cream_pairs", CreamPairsConfig)
def cream(scored: list[Scored], cfg: CreamPairsConfig, ctx: Any) -> Built:
    """CREAM: best-vs-worst pairs, each trusted by (Kendall tau + 1) / 2 between this and the last round's ranking."""
    return cream_pairs(scored, cfg.consistency_with, cfg.per, cfg.min_margin)
