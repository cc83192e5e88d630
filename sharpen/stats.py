"""The statistics of samples that feedback, monitors and evaluation share: pass@k, the
majority vote, AUROC, precision and recall.

Pure functions on plain values, in a leaf module (it imports nothing of sharpen): a vote
pseudo-label (feedback) and eval's majority accuracy (monitor) must be the same vote, and
neither part may import the other.
"""
from __future__ import annotations

from collections import Counter
from math import comb
from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021, eq. 1)."""
    if k > n:
        raise ValueError(f"pass@k needs k <= n (k={k}, n={n})")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """Most frequent extracted answer (None, a malformed answer, never wins); ties go to
    the answer seen first, so the vote is deterministic."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


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
