"""Preference pairs: best vs worst of a prompt's samples (iterative DPO, DNO) and SPIN's
gold-vs-own pairs."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sharpen.builders.by_prompt import by_prompt, ranked
from sharpen.errors import UserError
from sharpen.builders.base import BuildConfig
from sharpen.registry import BUILDERS
from sharpen.types import Built, PreferencePair, Scored


def preference_pairs(scored: list[Scored], min_margin: float = 0.0) -> Built:
    """One pair per prompt: highest- vs lowest-reward sample, kept only if the gap > min_margin.

    The margin filter is DNO's: a small gap is a noisy preference. Ties in reward go to
    the earlier sample for chosen and the later one for rejected; a rejected sample is
    never the chosen text repeated (the pair would carry no preference).
    """
    data: list[PreferencePair] = []
    filtered = 0
    for group in by_prompt(scored).values():
        order = ranked(group)
        best = order[0]
        worst = next((s for s in reversed(order) if s.sample.text != best.sample.text), best)
        gap = best.reward - worst.reward
        if worst is best or not gap > min_margin:
            filtered += 1
            continue
        data.append(PreferencePair(prompt=best.sample.prompt.text, chosen=best.sample.text,
                                   rejected=worst.sample.text, margin=gap))
    return Built(data, {"pairs": len(data), "filtered_by_margin": filtered})


def spin_pairs(scored: list[Scored]) -> Built:
    """SPIN: chosen = the prompt's gold completion, rejected = the model's own first sample.

    A sample identical to the gold text is skipped (the pair would be chosen == rejected);
    prompts whose every sample equals the gold one give no pair.
    """
    data: list[PreferencePair] = []
    identical = no_reference = 0
    groups = by_prompt(scored)
    for group in groups.values():
        prompt = group[0].sample.prompt
        if prompt.reference is None:
            no_reference += 1
            continue
        own = next((s for s in group if s.sample.text != prompt.reference), None)
        if own is None:
            identical += 1
            continue
        data.append(PreferencePair(prompt=prompt.text, chosen=prompt.reference, rejected=own.sample.text))
    if groups and no_reference == len(groups):
        raise UserError("build: spin_pairs needs gold completions (Prompt.reference) but this task gives none; "
                        "use a task with references or build.kind: pairs")
    return Built(data, {"pairs": len(data), "skipped_identical": identical, "no_reference": no_reference})


class PairsConfig(BuildConfig):
    """Best-vs-worst preference pairs per prompt, margin-filtered (DNO)."""

    kind: Literal["pairs"] = "pairs"
    min_margin: float = Field(0.0, ge=0, description="keep a pair only if reward(chosen) - reward(rejected) > min_margin")


class SPINPairsConfig(BuildConfig):
    """SPIN pairs: gold completion (chosen) vs the model's own sample (rejected)."""

    kind: Literal["spin_pairs"] = "spin_pairs"


@BUILDERS.register("pairs", PairsConfig)
def pairs(scored: list[Scored], cfg: PairsConfig, ctx: Any) -> Built:
    """Preference pairs: each prompt's best vs worst sample, kept if the reward gap > min_margin."""
    return preference_pairs(scored, cfg.min_margin)


@BUILDERS.register("spin_pairs", SPINPairsConfig)
def spin(scored: list[Scored], cfg: SPINPairsConfig, ctx: Any) -> Built:
    """SPIN pairs: the gold completion beats the model's own sample."""
    return spin_pairs(scored)
