"""Deterministic, disjoint train/eval/holdout splits from a seed.

A problem's split is a property of the problem, not of the order it was drawn in: a
stable hash of (task seed, canonical problem) puts every problem in exactly one split
(80/10/10), and each split's stream keeps only its own problems. So no eval or holdout
problem is ever trained on, whatever the sizes, rounds or draw order. Hashes use
hashlib (Python's `hash()` is salted per process), so splits agree across processes.
"""
from __future__ import annotations

import hashlib
import random
from typing import Callable, Iterable, Sequence, TypeVar

from sharpen.errors import UserError
from sharpen.seeds import derive_seed  # re-exported: tasks draw their streams with it
from sharpen.types import SPLITS

T = TypeVar("T")

FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, eval, holdout


def stable_hash(*parts: object) -> int:
    """A 64-bit integer from the parts' text, identical in every process and platform."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_of(key: str, seed: int, fractions: Sequence[float] = FRACTIONS) -> str:
    """The one split a canonical problem `key` belongs to under task seed `seed`."""
    u = stable_hash("split", seed, key) / 2**64
    edge = 0.0
    for name, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]


def check_split(split: str) -> None:
    """Reject split names outside train/eval/holdout with a one-line fix."""
    if split not in SPLITS:
        raise UserError(f"split: unknown split {split!r} (known: {', '.join(SPLITS)})")


def take_split(
    items: Iterable[T],
    key: Callable[[T], str],
    split: str,
    seed: int,
    n: int,
    distinct: bool = True,
    patience: int = 5000,
    fractions: Sequence[float] = FRACTIONS,
) -> list[T]:
    """The first `n` items of a stream that belong to `split` (by `split_of(key(item))`).

    With `distinct`, a problem is kept once. Stops early (returning fewer than `n`) when
    the stream ends or `patience` draws in a row add nothing: the problem space of that
    split is exhausted, and the caller decides whether that is a user error.
    """
    out: list[T] = []
    seen: set[str] = set()
    misses = 0
    for item in items:
        if len(out) >= n:
            break
        k = key(item)
        if split_of(k, seed, fractions) != split or (distinct and k in seen):
            misses += 1
            if misses >= patience:
                break
            continue
        misses = 0
        seen.add(k)
        out.append(item)
    return out


def round_batch(pool: Sequence[T], n: int, seed: int, round: int) -> list[T]:
    """`n` distinct items of a finite pool, a fresh deterministic draw for each round.

    Returns the whole pool (shuffled) when `n` exceeds it: a finite split cannot give more.
    """
    rng = random.Random(derive_seed(seed, "train-batch", round))
    return rng.sample(list(pool), min(n, len(pool)))
