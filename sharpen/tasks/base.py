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
import re
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


GENERIC_VERDICTS: tuple[tuple[str, ...], tuple[str, ...]] = (("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No"))


def generic_judge_prompt(prompt: Prompt, completion: str) -> str:
    """The judge format any instruct model can follow (and what a task without one gets)."""
    return (f"{prompt.text}\n\nProposed answer:\n{completion}\n\n"
            "Is the proposed answer correct? Reply yes or no.")


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
    @property
    def judge_verdicts(self) -> tuple[list[str], list[str]]:
        """Strings whose FIRST token means yes / no: a judge's P(yes) sums the first tokens of
        the yes strings (each token once), so "Yes" and " yes" both count for an instruct model."""
        return list(GENERIC_VERDICTS[0]), list(GENERIC_VERDICTS[1])

    def judge_prompt(self, prompt: Prompt, completion: str) -> str:
        """What a judge is conditioned on (generic, for instruct models; a chat policy wraps it in
        its template). Tasks with a format of their own (arithmetic's "7430+5200=27300?") override it."""
        return generic_judge_prompt(prompt, completion)

    def judge_negative(self, prompt: Prompt, rng: random.Random) -> str | None:
        """A wrong completion that looks like a solver's slip: the gold reference with 1-2 digits
        of its final number changed (in half the cases every occurrence of that number, so the
        working agrees with the wrong answer). None where the reference ends in no number."""
        return corrupt_final_number(prompt.reference or "", rng)

    def judge_examples(self, prompts: Sequence[Prompt], rng: random.Random) -> list[tuple[str, str]]:
        """(judge prompt, verdict) pairs from supervised data only, to teach the judge format:
        per prompt with a reference, its gold completion -> yes and one corrupted -> no. A
        negative is kept only if the task scores it below full credit (scored in batches, a
        few redraws for the rest; a prompt with no such negative gives no pair)."""
        yes, no = self.judge_verdicts[0][0], self.judge_verdicts[1][0]
        todo = [p for p in prompts if p.reference is not None]
        negative: dict[int, str] = {}
        for _ in range(8):
            drawn = [(i, p, self.judge_negative(p, rng)) for i, p in enumerate(todo) if i not in negative]
            drawn = [(i, p, w) for i, p, w in drawn if w is not None and w != p.reference]
            if not drawn:
                break
            scores = self.score_batch([p for _, p, _ in drawn], [w for _, _, w in drawn])
            negative.update({i: w for (i, _, w), s in zip(drawn, scores) if s < 1.0})
        out: list[tuple[str, str]] = []
        for i, p in enumerate(todo):
            if i in negative:
                out += [(self.judge_prompt(p, p.reference or ""), yes), (self.judge_prompt(p, negative[i]), no)]
        return out


def has_judge_format(task: Any) -> bool:
    """Whether `task` defines a judge format of its own (not the generic instruct-model one):
    what `sharpen seed` teaches the tiny model (it cannot read the generic English prompt)."""
    own = getattr(type(task), "judge_prompt", None)
    return own is not None and own is not BaseTask.judge_prompt


def slip_digit(digit: str, rng: random.Random, lo: str = "0") -> str:
    """Another digit, half the time one off (a carry slip), else any other (>= `lo`)."""
    d = int(digit)
    near = [str((d + s) % 10) for s in (-1, 1)]
    near = [x for x in near if x >= lo and x != digit]
    if near and rng.random() < 0.5:
        return rng.choice(near)
    return rng.choice([x for x in "0123456789" if x != digit and x >= lo] or [digit])


def change_digits(number: str, rng: random.Random, leading_zero: bool = False, k: int | None = None) -> str:
    """`number` with `k` of its digits changed (default: 1 two thirds of the time, else 2);
    the first digit of a multi-digit number never becomes 0 unless `leading_zero`."""
    digits = list(number)
    k = rng.choice((1, 1, 2)) if k is None else k
    for i in rng.sample(range(len(digits)), k=min(len(digits), k)):
        lo = "1" if i == 0 and len(digits) > 1 and not leading_zero else "0"
        digits[i] = slip_digit(digits[i], rng, lo)
    return "".join(digits)


def corrupt_final_number(reference: str, rng: random.Random) -> str | None:
    """The generic negative: change the last number of `reference` (its final answer); half
    the time every whole occurrence of that number (as in "8 + 6 = 14. Answer: 14")."""
    found = list(re.finditer(r"(?<![0-9])[0-9]+(?![0-9])", reference))
    if not found:
        return None
    last = found[-1]
    wrong = change_digits(last.group(), rng)
    if wrong == last.group():
        return None
    spans = [m.span() for m in found if m.group() == last.group()] if rng.random() < 0.5 else [last.span()]
    for a, b in reversed(spans):
        reference = reference[:a] + wrong + reference[b:]
    return reference


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
