"""Temporal Self-Rewarding pairs (Wang et al., 2025): the rejected side is
anchored to the initial model.

In plain self-rewarding, chosen and rejected improve together, so their gap (and the DPO
signal) shrinks round after round. Here the chosen answer is the best of this round's
samples, and the rejected one the lowest-scored sample of the *initial* model M0 on the
same prompt (`ctx.anchor`, sampled once in round 1 and scored by this round's judge;
sharpen.anchor). The paper's future-guided chosen (sampling a provisional next model) is
not built.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from sharpen.builders.base import BuildConfig
from sharpen.builders.by_prompt import by_prompt, ranked
from sharpen.registry import BUILDERS
from sharpen.types import Built, PreferencePair, Scored


def anchored_pairs(scored: list[Scored], anchor: dict[str, list[Scored]], min_margin: float = 0.0) -> Built:
    """Per prompt: this round's best sample vs the initial model's lowest-scored different one."""
    data: list[PreferencePair] = []
    filtered = no_anchor = 0
    gaps = []
    for pid, group in by_prompt(scored).items():
        best = ranked(group)[0]
        candidates = [a for a in ranked(anchor.get(pid, [])) if a.sample.text != best.sample.text]
        if not candidates:
            no_anchor += 1
            continue
        worst = candidates[-1]
        gap = best.reward - worst.reward
        if not gap > min_margin:
            filtered += 1
            continue
        gaps.append(gap)
        data.append(PreferencePair(prompt=best.sample.prompt.text, chosen=best.sample.text,
                                   rejected=worst.sample.text, margin=gap))
    return Built(data, {"pairs": len(data), "filtered_by_margin": filtered, "no_anchor": no_anchor,
                        "margin_mean": sum(gaps) / len(gaps) if gaps else None})


class AnchoredPairsConfig(BuildConfig):
    """Best current sample vs the initial model's worst (Temporal Self-Rewarding)."""

    kind: Literal["anchored_pairs"] = "anchored_pairs"
    uses_anchor: ClassVar[bool] = True  # the loop samples M0 in round 1 and hands its scored samples over
    min_margin: float = Field(0.0, ge=0, description="keep a pair only if reward(chosen) - reward(rejected) > min_margin")


@BUILDERS.register("anchored_pairs", AnchoredPairsConfig)
def anchored(scored: list[Scored], cfg: AnchoredPairsConfig, ctx: Any) -> Built:
    """Temporal Self-Rewarding: this round's best sample vs the initial model's lowest-scored one."""
    return anchored_pairs(scored, ctx.anchor or {}, cfg.min_margin)
