"""Base classes so a task writes only its problems, `extract` and `score`.

Two shapes of task share the split rules of `splits.py`:
- `ProceduralTask`: an endless generator (`generate(rng)`); train draws fresh problems
  every round, eval/holdout are the first n distinct problems of a fixed stream.
- `PoolTask`: a finite set of problems per split (`pool(split)`, e.g. a JSONL file);
  train draws a per-round sample of the pool, eval/holdout are its first n.
"""
from __future__ import annotations

import itertools
import json
import random
from abc import ABC, abstractmethod
from typing import Any, Sequence

from sharpen.errors import UserError
from sharpen.tasks.splits import check_split, derive_seed, round_batch, take_split
from sharpen.types import Prompt


def json_object(line: str, where: str, example: str) -> dict[str, Any]:
    """One line of a JSONL file as a dict; errors name "file:line" and the fix."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: bad JSON ({err.msg} at column {err.colno}); write one JSON object per line") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected an object like {example}, got {type(row).__name__}")
    return row


class BaseTask(ABC):
    """The `sharpen.types.Task` protocol with `score_batch` written once."""

    name: str
    seed: int

    @abstractmethod
    def prompts(self, split: str, n: int, round: int = 0) -> list[Prompt]: ...

    @abstractmethod
    def extract(self, completion: str) -> str | None:
        """The final answer in a completion, or None if it is malformed."""

    @abstractmethod
    def score(self, prompt: Prompt, answer: str | None) -> float:
        """Reward in [0, 1] for an extracted answer (0 for None)."""

    def score_batch(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        """extract, then score every answer (`score_answers`)."""
        if len(prompts) != len(completions):
            raise ValueError(f"score_batch: {len(prompts)} prompts but {len(completions)} completions")
        return self.score_answers(prompts, [self.extract(c) for c in completions])

    def score_answers(self, prompts: Sequence[Prompt], answers: Sequence[str | None]) -> list[float]:
        """One `score` per item; tasks with costly checks (code, in a sandbox) override this to batch them."""
        return [self.score(p, a) for p, a in zip(prompts, answers)]


    # ---- the judge format: how a model is asked whether an answer is right ------------
    judge_verdicts: tuple[tuple[str, ...], tuple[str, ...]] = (("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No"))
    """Strings whose first token means yes / no (the judge's P(yes) sums over the first group)."""

    def judge_prompt(self, prompt: Prompt, completion: str) -> str:
        """What a judge is conditioned on; an instruct model's chat template wraps it."""
        return (f"{prompt.text}\n\nProposed answer:\n{completion}\n\n"
                "Is the proposed answer correct? Reply yes or no.")


class ProceduralTask(BaseTask):
    """A task with an endless generator: subclasses write `generate` (and `canonical`)."""

    @abstractmethod
    def generate(self, rng: random.Random) -> Prompt:
        """One random problem; all randomness must come from `rng` (determinism)."""

    def canonical(self, prompt: Prompt) -> str:
        """The problem's identity for splitting: equal problems must map to equal keys."""
        return prompt.text

    def prompts(self, split: str, n: int, round: int = 0) -> list[Prompt]:
        check_split(split)
        # eval/holdout ignore the round: the same fixed problems measure every round.
        rng = random.Random(derive_seed(self.seed, self.name, split, round if split == "train" else 0))
        stream = (self.generate(rng) for _ in itertools.count())
        got = take_split(stream, self.canonical, split, self.seed, n, distinct=split != "train")
        if len(got) < n:
            raise UserError(
                f"task: {self.name} has only {len(got)} distinct {split!r} problems under this config "
                f"but {n} were asked; ask for fewer or widen the task (e.g. task.difficulty)"
            )
        return got


class PoolTask(BaseTask):
    """A task with a finite problem set per split: subclasses write `pool`."""

    @abstractmethod
    def pool(self, split: str) -> Sequence[Prompt]:
        """Every problem of `split`, in a fixed order."""

    def prompts(self, split: str, n: int, round: int = 0) -> list[Prompt]:
        """At most `n` prompts: a finite split cannot give more than it holds."""
        check_split(split)
        pool = self.pool(split)
        if split == "train":
            return round_batch(pool, n, self.seed, round)
        return list(pool[:n])


def check_range(pair: tuple[int, int], top: int, strict: bool = False) -> tuple[int, int]:
    """A config's [lo, hi] knob: 1 <= lo <= hi <= top (lo < hi when `strict`), else a ValueError with the fix."""
    lo, hi = pair
    if not (1 <= lo < hi <= top if strict else 1 <= lo <= hi <= top):
        raise ValueError(f"use [lo, hi] with 1 <= lo {'<' if strict else '<='} hi <= {top}, got [{lo}, {hi}]")
    return pair


def check_ops(ops: list[str], known: str) -> list[str]:
    """A config's op list: not empty, no op twice."""
    if not ops:
        raise ValueError(f"list at least one of {known}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"each op may appear once, got {ops}")
    return ops


def final_answer(completion: str, prefix: str | None = None) -> str | None:
    """The answer a free-text completion ends with, or None if there is none.

    With `prefix` (e.g. "Answer:") present, the rest of the line after its last
    occurrence; otherwise the last non-empty line. Stripped either way, because models
    pad with spaces and newlines that say nothing about correctness.
    """
    if prefix and prefix in completion:
        text = completion.rsplit(prefix, 1)[1].split("\n", 1)[0]
    else:
        lines = [line for line in completion.splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    text = text.strip()
    return text or None
