"""Program induction: write a one-line Python expression in `x` from input/output examples.

Small enough for a tiny character-level model, yet real code, run in the sandbox:

    prompt      "f(0)=3;f(1)=5;f(5)=13;f="        completion "2*x+3"

Functions come from a grammar in three levels (1: `x+c`, `x*c`; 2: `a*x+b`, `x*x`,
`x%c`, `x//c`; 3: `(x+a)*b`, `x*x+c`, `abs(x-c)`, `x//c+d`, `x%c+d`), with offsets
c, b, d up to `max_constant` (99: 4,520 functions). A completion is correct iff it
matches the function on every hidden test input (x in -3..12), whatever its form
(`x+x+3` is as good as `2*x+3`).

Why offsets up to 99 (benchmarks/code_generalization.py, gold SFT from scratch, seed 0):
with offsets 1..9 (438 functions, 41 in holdout) the model memorized the train functions
(loss 0.01-0.03 from 1000 steps) while holdout greedy stayed at 23-32% from 400 to 1500
steps, and STaR could not lift it; with offsets 1..99 holdout rose with training (38% at
400 steps, 61% at 1000, 68% at 1500) and tracked eval: fitting the train functions
teaches a rule that transfers.

Prompts are well posed: the shown inputs are chosen so that no other grammar function
agrees on them yet differs on a hidden input. The split of a problem is decided by its
*function* (not its examples), so no eval or holdout function is ever trained on; the
gold completion is the function's shortest grammar form.

Every prompt shows f(0) and f(1) when 3-4 inputs including them determine the function
(`anchors`): with random inputs only, the tiny model stayed at 0-1% eval greedy for 450
seed steps (reading `x+5` off `f(2)=7` takes a subtraction); with the anchors it copies
offsets and factors and reached 17% at 100 steps, 32% at 200, ~50% at 1000 (seed 0,
when offsets went to 9).
"""
from __future__ import annotations

import functools
import itertools
import random
import re
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sharpen.errors import UserError
from sharpen.registry import TASKS
from sharpen.sandbox.expressions import check_expressions
from sharpen.sandbox.hacking import overrides_dunders
from sharpen.tasks.base import BaseTask
from sharpen.tasks.splits import check_split, derive_seed, split_of
from sharpen.types import Prompt

HIDDEN_INPUTS: tuple[int, ...] = tuple(range(-3, 13))
MAX_EXPRESSION = 32  # characters; every grammar form is at most 12
_TOKENS = re.compile(r"(?:abs|x|[0-9]+|[-+*/%() ])+")
_K, _M = range(2, 10), range(2, 6)  # multipliers, small divisors; offsets are 1..max_constant
# level -> templates with the constants each takes ("C" = offsets 1..max_constant); drawn
# uniformly, then constants uniformly
TEMPLATES: dict[int, list[tuple[str, dict[str, range | str]]]] = {
    1: [("x+{c}", {"c": "C"}), ("x-{c}", {"c": "C"}), ("x*{c}", {"c": _K})],
    2: [("{a}*x+{b}", {"a": _K, "b": "C"}), ("{a}*x-{b}", {"a": _K, "b": "C"}), ("x*x", {}),
        ("x%{c}", {"c": _K}), ("x//{c}", {"c": _K})],
    3: [("(x+{a})*{b}", {"a": "C", "b": _K}), ("(x-{a})*{b}", {"a": "C", "b": _K}), ("x*x+{c}", {"c": "C"}),
        ("x*x-{c}", {"c": "C"}), ("abs(x-{c})", {"c": "C"}), ("x//{c}+{d}", {"c": _M, "d": "C"}),
        ("x//{c}-{d}", {"c": _M, "d": "C"}), ("x%{c}+{d}", {"c": _M, "d": "C"})],
}


@dataclass(frozen=True)
class Function:
    """One grammar function: its shortest form (the gold completion) and its hidden outputs."""

    expression: str
    outputs: tuple[int, ...]


def _outputs(expression: str) -> tuple[int, ...]:
    f = eval(f"lambda x: {expression}")  # our own grammar strings, never model text
    return tuple(f(x) for x in HIDDEN_INPUTS)


def _ranges(constants: dict[str, range | str], max_constant: int) -> dict[str, range]:
    return {k: range(1, max_constant + 1) if v == "C" else v for k, v in constants.items()}  # type: ignore[misc]


def _instances(template: str, constants: dict[str, range]) -> list[str]:
    names = list(constants)
    return [template.format(**dict(zip(names, values))) for values in itertools.product(*constants.values())]


class Grammar:
    """Every expression of the templates with offsets up to `max_constant`, grouped by the
    function it computes on the hidden inputs, with an output matrix for fast uniqueness checks."""

    def __init__(self, max_constant: int) -> None:
        forms: dict[tuple[int, ...], list[str]] = {}
        for templates in TEMPLATES.values():
            for template, constants in templates:
                for expr in _instances(template, _ranges(constants, max_constant)):
                    forms.setdefault(_outputs(expr), []).append(expr)
        self.functions = [Function(min(exprs, key=lambda e: (len(e), e)), out) for out, exprs in forms.items()]
        by_out = {f.outputs: f for f in self.functions}
        self.function_of = {e: by_out[out] for out, exprs in forms.items() for e in exprs}
        self.outputs = np.array([f.outputs for f in self.functions], dtype=np.int64)

    def well_posed(self, target: Function, shown: Sequence[int]) -> bool:
        """True iff every grammar function agreeing with `target` on the `shown` inputs equals it."""
        idx = [HIDDEN_INPUTS.index(x) for x in shown]
        want = np.array([target.outputs[i] for i in idx], dtype=np.int64)
        return int((self.outputs[:, idx] == want).all(axis=1).sum()) == 1

    def choose_examples(self, target: Function, rng: random.Random, tries: int = 20,
                        anchors: Sequence[int] = ()) -> list[int] | None:
        """3 (else 4) sorted inputs that determine `target` within the grammar, or None.

        The `anchors` are shown whenever some 3 or 4 inputs including them determine the
        function (else any inputs that do): f(0) reads off an offset and f(1) a slope, so a
        tiny model can copy constants instead of subtracting two shown outputs."""
        rest = [x for x in HIDDEN_INPUTS if x not in anchors]
        for pool, fixed in ((rest, sorted(set(anchors))), (list(HIDDEN_INPUTS), [])) if anchors else ((HIDDEN_INPUTS, []),):
            for k in (3, 4):
                if k <= len(fixed):
                    continue
                for _ in range(tries):
                    shown = sorted(fixed + rng.sample(pool, k - len(fixed)))
                    if self.well_posed(target, shown):
                        return shown
        return None


@functools.lru_cache(maxsize=4)
def grammar(max_constant: int) -> Grammar:
    return Grammar(max_constant)


def render(target: Function, shown: Sequence[int]) -> str:
    return "".join(f"f({x})={target.outputs[HIDDEN_INPUTS.index(x)]};" for x in shown) + "f="


class CodeConfig(BaseModel):
    """Knobs of the built-in code task."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["code"] = "code"
    difficulty: tuple[int, int] = (1, 3)
    """[lo, hi] grammar levels, each equally likely (1: x+c, x*c; 2: a*x+b, x*x, x%c, x//c; 3: compositions)."""
    max_constant: int = Field(99, ge=1, le=99)
    """Largest offset constant c in x+c, a*x+b, ...: more constants, more functions to generalize over."""
    anchors: tuple[int, ...] = (0, 1)
    """Inputs shown in every prompt that they help determine (f(0) = offset, f(1) = slope + offset); [] for random inputs only."""
    seed: int = 0
    """Seeds the split hash and every problem stream."""
    workers: int = 2
    """Sandboxed processes scoring a batch in parallel."""
    allow_weaker_sandbox: bool = False
    """Run completions even if the kernel refuses a sandbox protection (only on a machine you trust)."""

    @field_validator("difficulty")
    @classmethod
    def _levels(cls, difficulty: tuple[int, int]) -> tuple[int, int]:
        lo, hi = difficulty
        if not 1 <= lo <= hi <= max(TEMPLATES):
            raise ValueError(f"use [lo, hi] with 1 <= lo <= hi <= {max(TEMPLATES)}, got [{lo}, {hi}]")
        return difficulty

    @field_validator("anchors")
    @classmethod
    def _anchors(cls, anchors: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(anchors)) != len(anchors) or len(anchors) > 2 or not set(anchors) <= set(HIDDEN_INPUTS):
            raise ValueError(f"use at most 2 distinct inputs from {HIDDEN_INPUTS[0]}..{HIDDEN_INPUTS[-1]}, got {list(anchors)}")
        return anchors


class CodeTask(BaseTask):
    """Induce an expression from examples; scored by running it on hidden inputs in the sandbox."""

    name = "code"
    runs_code = True  # executor: ray scores it on the workers' sandboxes

    def __init__(self, cfg: CodeConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self._cache: dict[tuple[str, tuple[int, ...]], bool] = {}
        self.grammar = grammar(cfg.max_constant)

    def draw_function(self, rng: random.Random) -> tuple[Function, int]:
        level = rng.randint(*self.cfg.difficulty)
        template, constants = rng.choice(TEMPLATES[level])
        ranges = _ranges(constants, self.cfg.max_constant)
        expr = template.format(**{name: rng.choice(values) for name, values in ranges.items()})
        return self.grammar.function_of[expr], level

    def prompts(self, split: str, n: int, round: int = 0, patience: int = 5000) -> list[Prompt]:
        check_split(split)
        rng = random.Random(derive_seed(self.seed, self.name, split, round if split == "train" else 0))
        out: list[Prompt] = []
        seen: set[str] = set()
        misses = 0
        while len(out) < n:
            target, level = self.draw_function(rng)
            shown = self.grammar.choose_examples(target, rng, anchors=self.cfg.anchors) if split_of(target.expression, self.seed) == split else None
            text = render(target, shown) if shown else ""
            if not shown or (split != "train" and text in seen):
                misses += 1
                if misses >= patience:
                    raise UserError(f"task: code has only {len(out)} distinct {split!r} problems at difficulty "
                                    f"{list(self.cfg.difficulty)} but {n} were asked; ask for fewer or widen task.difficulty")
                continue
            misses = 0
            seen.add(text)
            tests = [[x, y] for x, y in zip(HIDDEN_INPUTS, target.outputs)]
            out.append(Prompt(id=f"code:{target.expression}:{','.join(map(str, shown))}", text=text,
                              answer=target.expression, reference=target.expression,
                              meta={"level": level, "op": f"level{level}", "shown": shown, "tests": tests}))
        return out

    def extract(self, completion: str) -> str | None:
        """The first line, stripped; None if empty, longer than 32 chars, or not made of x, digits,
        `+-*/%()`, spaces and `abs` (so no names, attributes or strings can reach the sandbox)."""
        lines = completion.strip().splitlines()
        expr = lines[0].strip() if lines else ""
        if not expr or len(expr) > MAX_EXPRESSION or not _TOKENS.fullmatch(expr):
            return None
        return expr

    def reward_hacking_signs(self, completion: str) -> bool:
        """A dunder in the line that would be run (counted in metrics.json; `extract` rejects it,
        as it rejects every name but `abs` and `x`, so it always scores 0)."""
        lines = completion.strip().splitlines()
        return bool(lines) and overrides_dunders(lines[0])

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """1.0 iff the expression gives the expected output on every hidden input."""
        return self.score_answers([prompt], [answer])[0]

    def score_answers(self, prompts: Sequence[Prompt], answers: Sequence[str | None]) -> list[float]:
        """All distinct (expression, problem) pairs of the batch run in one sandboxed process per worker."""
        keys = [(a, tuple(y for _, y in p.meta["tests"])) if a is not None and _TOKENS.fullmatch(a) else None
                for p, a in zip(prompts, answers)]
        todo = {k: p for k, p in zip(keys, prompts) if k is not None and k not in self._cache}
        for k, p in list(todo.items()):
            if k[0] == p.answer:  # the gold expression needs no run
                self._cache[k] = True
                del todo[k]
        if todo:
            items = [(a, HIDDEN_INPUTS, outs) for a, outs in todo]
            ok = check_expressions(items, workers=self.cfg.workers, allow_weaker=self.cfg.allow_weaker_sandbox)
            if len(self._cache) > 500_000:  # a long run's cache stays bounded
                self._cache.clear()
            self._cache.update(zip(todo, ok))
        return [float(self._cache.get(k, False)) if k is not None else 0.0 for k in keys]


@TASKS.register("code", CodeConfig)
def code(cfg: CodeConfig) -> CodeTask:
    """Write a one-line Python expression in x from input/output examples; run on hidden tests in the sandbox."""
    return CodeTask(cfg)
