"""Signal audit: how well a reward separates correct from wrong samples, every round.

A label-free signal (a vote, a confidence, a judge) is only as good as its agreement with
ground truth; this is where a run sees it drift or get gamed. Precision and recall are at
the signal's threshold; AUROC needs no threshold. `auroc_within_prompt` ranks only samples
of the same prompt, which is what a group-relative advantage (GRPO) and best-vs-worst
pairs actually use: a signal can separate easy from hard prompts (high AUROC) and still
rank a prompt's own samples at random.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from sharpen.types import Scored


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a random positive > score of a random negative), ties counted half
    (the Mann-Whitney U statistic over n_pos * n_neg); None when a class is empty."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    # rank-based O(n log n): average ranks over ties
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    n_pos, n_neg = len(pos), len(neg)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def precision_recall(scores: Sequence[float], labels: Sequence[bool],
                     rewarded: Sequence[bool]) -> tuple[float | None, float | None]:
    """precision = P(correct | rewarded), recall = P(rewarded | correct); None when undefined."""
    tp = sum(1 for r, y in zip(rewarded, labels) if r and y)
    n_rewarded, n_pos = sum(rewarded), sum(labels)
    return (tp / n_rewarded if n_rewarded else None), (tp / n_pos if n_pos else None)


def audit_signal(scored: list[Scored], values: Sequence[float], threshold: float | None) -> dict[str, Any]:
    """Audit one signal (`values[i]` for `scored[i]`) against the verifier's `correct`.
    threshold None: a sample is rewarded when its value is above its prompt's mean."""
    known = [(s, v) for s, v in zip(scored, values) if s.correct is not None]
    out: dict[str, Any] = {"mean": sum(values) / len(values) if values else None,
                           "threshold": threshold if threshold is not None else "prompt_mean"}
    if not known:
        return {**out, "ground_truth": False}
    by_prompt: dict[str, list[tuple[Scored, float]]] = defaultdict(list)
    for s, v in known:
        by_prompt[s.sample.prompt.id].append((s, v))
    if threshold is None:
        means = {pid: sum(v for _, v in g) / len(g) for pid, g in by_prompt.items()}
        rewarded = [v > means[s.sample.prompt.id] + 1e-12 for s, v in known]
    else:
        rewarded = [v > threshold for _, v in known]
    labels = [bool(s.correct) for s, _ in known]
    vals = [v for _, v in known]
    precision, recall = precision_recall(vals, labels, rewarded)
    within = [a for g in by_prompt.values() if (a := auroc([v for _, v in g], [bool(s.correct) for s, _ in g])) is not None]
    return {**out, "precision": precision, "recall": recall, "auroc": auroc(vals, labels),
            "auroc_within_prompt": sum(within) / len(within) if within else None,
            "prompts_mixed": len(within), "rewarded_rate": sum(rewarded) / len(rewarded),
            "correct_rate": sum(labels) / len(labels)}
