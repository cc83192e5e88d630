"""SFT sets from the round's own samples: rejection sampling (STaR, ReST-EM, RFT) and best-of-n.

Rejection sampling keeps what the feedback accepts; best-of-n keeps each prompt's top
samples whatever their reward, which with a self-reward (the policy's own likelihood) is
SFT-sharpening. Both are the same filter: rank, dedupe, cap.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sharpen.builders.by_prompt import by_prompt, ranked
from sharpen.builders.base import BuildConfig
from sharpen.registry import BUILDERS
from sharpen.types import Built, Scored, SFTExample


def rejection_sample(scored: list[Scored], threshold: float = 1.0, dedupe: bool = True,
                     max_per_prompt: int | None = None) -> Built:
    """Per prompt: keep samples with reward >= threshold, best first, drop repeated texts, cap.

    The cap keeps easy prompts from dominating the set (ReST-EM); dedupe keeps the count
    of *distinct* solutions, which RFT found is what drives the gain.
    """
    data: list[SFTExample] = []
    prompts = duplicates = capped = 0
    for group in by_prompt(scored).values():
        seen: set[str] = set()
        kept = 0
        for s in ranked(group):
            if s.reward < threshold:
                break  # ranked: every later sample scores lower
            if dedupe and s.sample.text in seen:
                duplicates += 1
                continue
            if max_per_prompt is not None and kept >= max_per_prompt:
                capped += 1
                continue
            seen.add(s.sample.text)
            data.append(SFTExample(prompt=s.sample.prompt.text, completion=s.sample.text))
            kept += 1
        prompts += kept > 0
    return Built(data, {"kept": len(data), "prompts_with_kept": prompts, "dropped_duplicates": duplicates,
                        "dropped_by_cap": capped})


class SFTBuildConfig(BuildConfig):
    """Rejection-sampled SFT set: the samples the feedback accepts."""

    kind: Literal["sft"] = "sft"
    threshold: float = Field(1.0, description="keep samples with reward >= threshold (1.0 with the verifier: correct only)")
    dedupe: bool = Field(True, description="drop repeated identical completions of one prompt")
    max_per_prompt: int | None = Field(None, gt=0, description="cap kept completions per prompt, highest reward first (ReST-EM)")


@BUILDERS.register("sft", SFTBuildConfig)
def sft_set(scored: list[Scored], cfg: SFTBuildConfig, ctx: Any) -> Built:
    """Rejection sampling: SFT on samples with reward >= threshold, deduped and capped per prompt."""
    return rejection_sample(scored, cfg.threshold, cfg.dedupe, cfg.max_per_prompt)


class BestOfNConfig(BuildConfig):
    """Best-of-n SFT set: each prompt's top-k samples by reward, correct or not."""

    kind: Literal["best_of_n"] = "best_of_n"
    k: int = Field(1, gt=0, description="samples kept per prompt (distinct texts, highest reward first)")


@BUILDERS.register("best_of_n", BestOfNConfig)
def best_of_n(scored: list[Scored], cfg: BestOfNConfig, ctx: Any) -> Built:
    """SFT-sharpening: keep each prompt's top-k samples by reward, whatever their correctness."""
    return rejection_sample(scored, threshold=float("-inf"), dedupe=True, max_per_prompt=cfg.k)
