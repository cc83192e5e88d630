"""Multi-step arithmetic chains: a start value and 2-6 operations, one intermediate result
a line. Built for process rewards and step search: every step has an exact checker, so a
process reward model's step scores and a tree search's step values can be measured
against the truth, and the final answer is verified as in every task.

Two formats of the same problems:

- `reversed` (the tiny model's, as in `arithmetic`): values zero-padded to `width` digits
  and written least-significant digit first, so a carry runs in the order digits are
  written. Start 47, +8, -5, +9:

      prompt "74a+8b-5c+9="    completion "a74+8=55\\nb55-5=05\\nc05+9=95"    (55, 50, 59 reversed)

  Each operation carries a letter, and each line starts with its operation's letter, then
  restates the value before it and the operation, then the result. A 2-layer model finds
  the next operation by the next letter, which occurs once in the prompt. Measured on the
  seed (seed 0): with bare results one a line it learned each chain length separately, in
  jumps (3-step chains at 8% while 6-step ones were at 82%, step 1360); with lines
  "74+8=55" and no letters it stalled near 6% for 500 steps, since an operation like "-5"
  often occurs twice in one prompt.
- `plain` (an instruct model's): "Start with 47. Add 8, then subtract 5, then add 9. ..."
  and lines "47 + 8 = 55".

The final answer is the last line. A step is *right* when its line is the true value after
that many operations and every line before it is right too: Math-Shepherd's notion (a
step is good when the solution can still reach the answer from it), which this task can
check exactly. `step_labels` gives it per line; `local_steps` whether each line applies its
operation correctly to the line before (an error carried forward looks locally right).

Every value stays in [0, 10**width - 1]: an operation that would leave it is not drawn.
"""
from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from sharpen.registry import TASKS
from sharpen.tasks.base import ProceduralTask, check_ops, check_range, slip_digit
from sharpen.types import Prompt

Op = Literal["add", "sub", "mul"]
SYMBOL: dict[str, str] = {"add": "+", "sub": "-", "mul": "*"}
WORDS: dict[str, str] = {"add": "add {}", "sub": "subtract {}", "mul": "multiply by {}"}
SEPARATOR = "\n"  # one step a line
LETTERS = "abcdefghijkl"  # step i's letter in the reversed format (steps: at most 12)
_NUMBER = re.compile(r"-?[0-9]+")


class ChainConfig(BaseModel):
    """Knobs of the chain task."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["chain"] = "chain"
    steps: tuple[int, int] = (2, 6)
    """[lo, hi] operations per problem, each count equally likely."""
    ops: list[Op] = ["add", "sub"]
    """Operations: add, sub (never below 0), mul (by 2-9, never above the width)."""
    operand_max: int = 9
    """Largest operand of add and sub (1..operand_max)."""
    width: int = 2
    """Digits of every value: values stay in [0, 10**width - 1]."""
    format: Literal["reversed", "plain"] = "reversed"
    """reversed: the tiny model's digit order; plain: words and ordinary numbers, for instruct models."""
    seed: int = 0
    """Seeds the split hash and every problem stream."""

    _ops = field_validator("ops")(lambda cls, ops: check_ops(ops, "add, sub, mul"))
    _steps = field_validator("steps")(lambda cls, v: check_range(v, 12))

    @field_validator("width")
    @classmethod
    def _width(cls, width: int) -> int:
        if not 1 <= width <= 6:
            raise ValueError(f"{width}: use 1 to 6 digits")
        return width

    @model_validator(mode="after")
    def _operand_fits(self) -> "ChainConfig":
        if not 1 <= self.operand_max < 10**self.width:
            raise ValueError(f"operand_max {self.operand_max} must be 1 to {10**self.width - 1} for width {self.width}; "
                             "change task.operand_max or task.width")
        return self


def apply(op: str, value: int, operand: int) -> int:
    return {"add": value + operand, "sub": value - operand, "mul": value * operand}[op]


class ChainTask(ProceduralTask):
    """Chains of add/sub/mul, one intermediate result a line; exact final-answer and step checks."""

    name = "chain"
    step_separator = SEPARATOR

    def __init__(self, cfg: ChainConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.top = 10**cfg.width - 1

    # -- problems -------------------------------------------------------------------------
    def _options(self, value: int) -> list[tuple[str, int]]:
        """Every (op, operand) that keeps the value in range."""
        out: list[tuple[str, int]] = []
        for op in self.cfg.ops:
            if op == "add":
                out += [(op, b) for b in range(1, self.cfg.operand_max + 1) if value + b <= self.top]
            elif op == "sub":
                out += [(op, b) for b in range(1, self.cfg.operand_max + 1) if value - b >= 0]
            else:
                out += [(op, b) for b in range(2, 10) if value * b <= self.top]
        return out

    def generate(self, rng: random.Random) -> Prompt:
        k = rng.randint(*self.cfg.steps)
        start = rng.randint(10 ** (self.cfg.width - 1) if self.cfg.width > 1 else 0, self.top)
        value, chain = start, []
        for _ in range(k):
            options = self._options(value)
            op = rng.choice(sorted({o for o, _ in options}))  # the op first, so a rare op (mul) is not drowned by many operands
            b = rng.choice([b for o, b in options if o == op])
            chain.append((op, b))
            value = apply(op, value, b)
        return self.make_problem(start, chain)

    def make_problem(self, start: int, chain: list[tuple[str, int]]) -> Prompt:
        """The prompt, gold values and gold completion of `start` followed by `chain`."""
        values, value = [], start
        for op, b in chain:
            value = apply(op, value, b)
            if not 0 <= value <= self.top:
                raise ValueError(f"{start} {chain} leaves [0, {self.top}]")
            values.append(value)
        if self.cfg.format == "reversed":
            text = self.write(start) + "".join(f"{LETTERS[i]}{SYMBOL[op]}{b}" for i, (op, b) in enumerate(chain)) + "="
        else:
            text = (f"Start with {start}. " + ", then ".join(WORDS[op].format(b) for op, b in chain).capitalize()
                    + ". Write the result after each step on its own line, and nothing else.")
        return Prompt(id=f"chain:{start}:" + ",".join(f"{op}{b}" for op, b in chain), text=text,
                      answer=self.write(values[-1]), reference=self.solution(start, chain, values),
                      meta={"op": f"{len(chain)}-step", "start": start, "chain": [[op, b] for op, b in chain],
                            "values": values})

    def step_line(self, i: int, before: int, op: str, b: int, value: int) -> str:
        """Step i as written: `a74+8=55` (reversed) or `47 + 8 = 55` (plain)."""
        if self.cfg.format == "reversed":
            return f"{LETTERS[i]}{self.write(before)}{SYMBOL[op]}{b}={self.write(value)}"
        return f"{before} {SYMBOL[op]} {b} = {value}"

    def solution(self, start: int, chain: list[tuple[str, int]], values: list[int]) -> str:
        """The worked completion with these step values (the gold one, or a slipped one)."""
        befores = [start, *values[:-1]]
        return SEPARATOR.join(self.step_line(i, x, op, b, v) for i, (x, (op, b), v) in enumerate(zip(befores, chain, values)))

    def write(self, value: int) -> str:
        return str(value).zfill(self.cfg.width)[::-1] if self.cfg.format == "reversed" else str(value)

    def read(self, line: str) -> int | None:
        """A line's value (what follows its last '='), or None when it is not a value of this format."""
        line = line.rsplit("=", 1)[-1].strip()
        if self.cfg.format == "reversed":
            return int(line[::-1]) if len(line) == self.cfg.width and line.isdigit() else None
        m = _NUMBER.fullmatch(line.rstrip(".").replace(",", ""))
        return int(m.group(0)) if m else None

    def canonical(self, prompt: Prompt) -> str:
        return prompt.id

    # -- checking -------------------------------------------------------------------------
    def steps(self, completion: str) -> list[str]:
        """The written steps: the completion's non-empty lines."""
        return [line for line in completion.strip().split(SEPARATOR) if line.strip()]

    def step_labels(self, prompt: Prompt, completion: str) -> list[bool]:
        """Per written step: its value is the true one after that many operations and every
        step before it is right (lines past the last operation are wrong)."""
        truth, out, ok = prompt.meta["values"], [], True
        for i, line in enumerate(self.steps(completion)):
            ok = ok and i < len(truth) and self.read(line) == truth[i]
            out.append(ok)
        return out

    def local_steps(self, prompt: Prompt, completion: str) -> list[bool]:
        """Per written step: its operation applied correctly to the value written before it
        (the start for the first), whether or not that value was right."""
        chain, prev, out = prompt.meta["chain"], prompt.meta["start"], []
        for i, line in enumerate(self.steps(completion)):
            value = self.read(line)
            out.append(i < len(chain) and prev is not None and value == apply(chain[i][0], prev, chain[i][1]))
            prev = value
        return out

    def extract(self, completion: str) -> str | None:
        """The last line, when it is a value of this format (in its written form)."""
        lines = self.steps(completion)
        if not lines or self.read(lines[-1]) is None:
            return None
        return self.write(self.read(lines[-1]))  # type: ignore[arg-type]

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """Exact match of the final value."""
        return 1.0 if answer is not None and answer == prompt.answer else 0.0

    def judge_negative(self, prompt: Prompt, rng: random.Random) -> str | None:
        """A solver's slip: one step's value off by a digit, carried on correctly from there."""
        chain, values = prompt.meta["chain"], list(prompt.meta["values"])
        i = rng.randrange(len(values))
        digits = list(str(values[i]).zfill(self.cfg.width))
        j = rng.randrange(len(digits))
        digits[j] = slip_digit(digits[j], rng)
        values[i], bad = int("".join(digits)), False
        for s in range(i + 1, len(values)):
            values[s] = apply(chain[s][0], values[s - 1], chain[s][1])
            bad = bad or not 0 <= values[s] <= self.top
        if bad or values[-1] == prompt.meta["values"][-1]:
            return None
        return self.solution(prompt.meta["start"], [(op, b) for op, b in chain], values)


@TASKS.register("chain", ChainConfig)
def chain(cfg: ChainConfig) -> ChainTask:
    """Multi-step add/sub/mul chains, one intermediate result a line, with exact step checks."""
    return ChainTask(cfg)
