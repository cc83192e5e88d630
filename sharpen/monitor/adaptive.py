"""B-STaR's adaptive knobs (Zeng et al., 2024): before each round, pick the
sampling temperature and the reward threshold that maximise the mean balance score on a
probe batch of the round's training prompts.

For each temperature of the grid the probe is sampled (seeded from (run seed, round,
temperature, prompt), so a resumed run draws the same) and scored by the recipe's
feedback; for each threshold, a prompt's selection is its samples with reward >= threshold
(as the SFT builder keeps them), and bs_i = min(n'_i / n*, 1) * n'_i / n_i. Ties go to the
lower temperature, then the lower threshold: the grid order decides, never luck.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from sharpen.monitor.exploitation import balance_score
from sharpen.seeds import derive_seed
from sharpen.types import Completion, Prompt, Sample, SamplingParams, Scored, group_by_prompt


class AdaptConfig(BaseModel):
    """B-STaR: grid-search sampling temperature and reward threshold by balance score each round."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["b_star"] = "b_star"
    temperatures: list[float] = Field(default_factory=lambda: [0.5, 0.7, 0.9, 1.1, 1.3],
                                      description="sampling temperatures tried", min_length=1)
    thresholds: list[float] = Field(default_factory=lambda: [1.0], min_length=1,
                                    description="reward thresholds tried (build.threshold: keep reward >= threshold)")
    probe: int = Field(32, gt=0, description="training prompts of the round sampled for each temperature")
    n_star: int = Field(8, gt=0, description="target distinct correct samples per prompt (8 in the paper's code)")


def selection_by_threshold(scored: list[Scored], threshold: float) -> list[list[tuple[str, bool]]]:
    """Per prompt: (text, correct) of its samples with reward >= threshold."""
    return [[(s.sample.text, bool(s.correct)) for s in g if s.reward >= threshold]
            for g in group_by_prompt(scored).values()]


def grid_scores(scored_by_t: dict[float, list[Scored]], thresholds: Sequence[float], n_star: int) -> list[dict[str, float]]:
    """Mean balance score of every (temperature, threshold), in grid order."""
    return [{"temperature": t, "threshold": thr, "balance_score": balance_score(selection_by_threshold(sc, thr), n_star) or 0.0}
            for t, sc in scored_by_t.items() for thr in thresholds]


def best(grid: list[dict[str, float]]) -> dict[str, float]:
    """The highest balance score; the first in grid order among ties."""
    return max(grid, key=lambda g: (g["balance_score"], -grid.index(g)))


def choose_knobs(cfg: AdaptConfig, prompts: list[Prompt], base: SamplingParams, seed: int, r: int,
                 generate: Callable[..., list[list[Completion]]],
                 score: Callable[[list[Sample]], list[Scored]]) -> dict[str, Any]:
    """Sample the probe at each temperature, score it, and return the chosen knobs with the grid."""
    scored_by_t: dict[float, list[Scored]] = {}
    for t in cfg.temperatures:
        params = SamplingParams(n=base.n, temperature=t, top_p=base.top_p, max_new_tokens=base.max_new_tokens)
        seeds = [derive_seed(seed, "adapt", r, t, p.id) for p in prompts]
        groups = generate([p.text for p in prompts], params, seeds)
        scored_by_t[t] = score([Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)])
    if any(s.correct is None for sc in scored_by_t.values() for s in sc):
        raise ValueError("adapt: B-STaR's balance score needs ground truth (Scored.correct) on the train prompts")
    grid = grid_scores(scored_by_t, cfg.thresholds, cfg.n_star)
    choice = best(grid)
    return {"temperature": choice["temperature"], "threshold": choice["threshold"],
            "balance_score": choice["balance_score"], "probe": len(prompts), "grid": grid}
