"""Held-out measurement: greedy accuracy, pass@k and majority-vote accuracy per split.

Every gain a recipe claims is a difference of these numbers between round 0 (the
starting policy) and later rounds, on prompts no round trains on.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from sharpen.stats import majority_vote, pass_at_k
from sharpen.types import Engine, Prompt, SamplingParams, Task


def evaluate_split(
    engine: Engine,
    task: Task,
    prompts: list[Prompt],
    *,
    k: int,
    temperature: float,
    max_new_tokens: int,
    seeds: Sequence[int],
    progress: Any = None,
) -> dict[str, Any]:
    """Greedy accuracy, pass@k (k samples per prompt) and maj@k accuracy on `prompts`,
    sampled by `engine`; `seeds[i]` draws prompt i's k samples."""
    texts = [p.text for p in prompts]
    greedy_groups = engine.generate(texts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens), seeds,
                                    progress=progress)
    greedy = [g[0].text for g in greedy_groups]
    greedy_scores = task.score_batch(prompts, greedy)
    result: dict[str, Any] = {"greedy_accuracy": sum(s >= 1.0 for s in greedy_scores) / len(prompts)}
    if k > 0:
        groups = engine.generate(texts, SamplingParams(n=k, temperature=temperature, max_new_tokens=max_new_tokens),
                                 seeds, progress=progress)
        flat_p = [p for p, g in zip(prompts, groups) for _ in g]
        flat_c = [c.text for g in groups for c in g]
        scores = task.score_batch(flat_p, flat_c)
        pass_k = maj = 0.0
        for i, (p, g) in enumerate(zip(prompts, groups)):
            s = scores[i * k : (i + 1) * k]
            pass_k += pass_at_k(k, sum(x >= 1.0 for x in s), k)
            voted = majority_vote([task.extract(c.text) for c in g])
            maj += task.score(p, voted) >= 1.0 if voted is not None else 0.0
        result["pass_at_k"] = pass_k / len(prompts)
        result["majority_accuracy"] = maj / len(prompts)
    result["k"] = k
    result["n"] = len(prompts)
    by_op = _by_group(prompts, greedy_scores)
    if by_op:
        result["greedy_by_op"] = by_op
    return result


def _by_group(prompts: list[Prompt], scores: list[float]) -> dict[str, float]:
    """Greedy accuracy per `meta['op']` (arithmetic) when the task tags prompts."""
    tot: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for p, s in zip(prompts, scores):
        op = p.meta.get("op") if p.meta else None
        if op is None:
            continue
        tot[op] += 1
        hit[op] += s >= 1.0
    return {op: hit[op] / tot[op] for op in sorted(tot)}
