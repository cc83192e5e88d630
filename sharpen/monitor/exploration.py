"""Exploration (B-STaR): does the policy still find many, varied correct answers?

Measured on the round's own samples of its training prompts, before training on them:
pass@k, distinct correct completions and distinct answers per prompt, distinct-n of the
completions' tokens, and the entropy of each prompt's answer distribution. In STaR these
fall over rounds as the policy collapses onto one answer per prompt; B-STaR's adaptive
temperature is meant to hold them up. `exploration_probe` measures the same on fixed
prompts at a fixed temperature after training, so runs sampling at different
temperatures compare like with like.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Literal

from pydantic import Field

from sharpen.monitor.base import MonitorConfig, MonitorResult, RoundView
from sharpen.registry import MONITORS
from sharpen.seeds import derive_seed
from sharpen.stats import pass_at_k
from sharpen.types import Sample, SamplingParams, Scored, group_by_prompt


def distinct_n(token_lists: list[list[int]], n: int) -> float | None:
    """Unique n-grams / all n-grams over `token_lists` (Li et al., 2016); None without any n-gram."""
    grams = [tuple(t[i:i + n]) for t in token_lists for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def entropy(outcomes: list[Any]) -> float:
    """Shannon entropy (nats) of the empirical distribution of `outcomes`."""
    counts = Counter(outcomes)
    total = len(outcomes)
    return -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def exploration_stats(scored: list[Scored], k: int | None = None, probe: int | None = None,
                      ns: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Per-prompt exploration numbers averaged over the first `probe` prompts (all when None).
    pass@k and distinct-correct need ground truth (`Scored.correct`) and are left out without it."""
    groups = list(group_by_prompt(scored).values())[:probe]  # first-seen prompts: a deterministic probe
    if not groups:
        return {}
    out: dict[str, Any] = {"prompts": len(groups)}
    for n in ns:
        out[f"distinct_{n}"] = _mean([d for g in groups if (d := distinct_n([list(s.sample.completion.token_ids) for s in g], n)) is not None])
    out["answer_entropy"] = _mean([entropy([s.answer for s in g]) for g in groups])
    out["distinct_answers_per_prompt"] = _mean([len({s.answer for s in g if s.answer is not None}) for g in groups])
    tokens = [lp for g in groups for s in g for lp in s.sample.completion.logprobs]
    if tokens:  # mean -log p of the sampled tokens: an estimate of the sampling distribution's entropy
        out["token_nll"] = -sum(tokens) / len(tokens)
    if all(s.correct is not None for g in groups for s in g):
        size = min(len(g) for g in groups)
        k = min(k or size, size)
        out["k"] = k
        out["pass_at_k"] = _mean([pass_at_k(len(g), sum(bool(s.correct) for s in g), k) for g in groups])
        out["distinct_correct_per_prompt"] = _mean([len({s.sample.text for s in g if s.correct}) for g in groups])
        out["prompts_solved"] = _mean([float(any(s.correct for s in g)) for g in groups])
    return out


class ExplorationConfig(MonitorConfig):
    """pass@k, distinct correct answers, distinct-n and answer entropy of the round's samples."""

    kind: Literal["exploration"] = "exploration"
    k: int | None = Field(None, gt=0, description="k of pass@k (default: the samples per prompt)")
    probe: int | None = Field(None, gt=0, description="measure the first `probe` training prompts of the round (default: all)")
    distinct_n: list[int] = Field(default_factory=lambda: [1, 2], description="n of the distinct-n token statistics")


@MONITORS.register("exploration", ExplorationConfig)
def exploration(view: RoundView, cfg: ExplorationConfig) -> MonitorResult | None:
    """Exploration of the round's samples: pass@k, distinct correct answers, distinct-n, answer entropy."""
    if view.phase != "build" or not view.scored:
        return None
    return MonitorResult(exploration_stats(view.scored, cfg.k, cfg.probe, tuple(cfg.distinct_n)))


class ExplorationProbeConfig(MonitorConfig):
    """Exploration of the trained policy at a fixed temperature on fixed training prompts, so
    runs that sample at different temperatures (B-STaR) compare like with like (opt-in: it samples)."""

    kind: Literal["exploration_probe"] = "exploration_probe"
    temperature: float = Field(0.8, ge=0.0, description="sampling temperature of the probe (the same every round)")
    probe: int = Field(128, gt=0, description="training prompts sampled (round 0's draw, the same every round)")
    k: int = Field(8, gt=0, description="samples per prompt")
    max_new_tokens: int = Field(32, gt=0)


def probe_samples(view: RoundView, cfg: ExplorationProbeConfig) -> list[Scored]:
    """k samples of each probe prompt from the synced engine, scored by the task (seeded per prompt)."""
    assert view.engine is not None, "exploration_probe needs the loop's engine"
    prompts = view.task.prompts("train", cfg.probe, round=0)
    params = SamplingParams(n=cfg.k, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    groups = view.engine.generate([p.text for p in prompts], params, [derive_seed(view.seed, "explore", p.id) for p in prompts])
    samples = [Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)]
    scores = view.task.score_batch([s.prompt for s in samples], [s.text for s in samples])
    return [Scored(s, r, r >= 1.0, view.task.extract(s.text)) for s, r in zip(samples, scores)]


@MONITORS.register("exploration_probe", ExplorationProbeConfig)
def exploration_probe(view: RoundView, cfg: ExplorationProbeConfig) -> MonitorResult | None:
    """Exploration of the trained policy at a fixed temperature on fixed training prompts."""
    if view.phase != "eval":
        return None
    return MonitorResult({**exploration_stats(probe_samples(view, cfg), cfg.k), "temperature": cfg.temperature})
