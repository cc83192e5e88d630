"""Short templated English word problems for small pretrained instruct models.

    Prompt:    "Dana has 8 apples. Dana gets 6 more apples. How many apples does Dana have
                now? End your reply with 'Answer: <number>'."
    reference: "Dana has 8 apples and gets 6 more, so 8 + 6 = 14.\\nAnswer: 14"
    answer:    "14"

The prompt is the user turn: a chat policy wraps it in its chat template (and its
`system_prompt`). Each problem is a chain of `steps` operations on one quantity: the
first is any of `ops` (add, sub, mul "N boxes of M", div "shares N equally among M"),
later ones add or subtract. `meta["op"]` is the chain ("add", "mul+sub", ...), so
metrics report accuracy per operation.

Scoring reads the number after the last "Answer:" (case, markdown bold, "$", commas and a
trailing unit are tolerated; "Answer: 8 + 6 = 14" reads 14) and compares it numerically
with the gold answer; a reply without "Answer:" scores 0. So a self-training round can
gain on two levers: the answer format and the arithmetic.

Splits: with `split_by: numbers` a problem is its arithmetic (the chain and its numbers),
so no eval or holdout sum is ever trained on under another name or object; that needs a
wide number range (1-10 addition has only 55 sums). With `split_by: text` (the default)
a problem is its full text: the same small sum may appear in train and eval under other
words, so a gain there includes learning those facts.

Defaults (single-step addition, numbers 1-10, split by text) are calibrated for
SmolLM2-135M-Instruct Q4_1 with its chat template (`benchmarks/word_problems_calibration.py`,
40 eval prompts, greedy, bf16, 2 contended cores): greedy 37.5%, 22.5% of greedy replies
lack "Answer:"; add/sub over 1-10 gave 10% (sub 0%: its arithmetic was often right but 60%
of replies had no "Answer:" line); add/sub over 1-50 5%; replies average ~28 tokens.
"""
from __future__ import annotations

import random
import re
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from sharpen.registry import TASKS
from sharpen.tasks.base import ProceduralTask, check_ops, check_range
from sharpen.types import Prompt

Op = Literal["add", "sub", "mul", "div"]
SYMBOL: dict[str, str] = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
INSTRUCTION = "End your reply with 'Answer: <number>'."

NAMES = ("Dana", "Tom", "Maya", "Leo", "Sara", "Ben", "Nina", "Omar", "Lucy", "Sam", "Ella", "Jack",
         "Rosa", "Ivan", "Mia", "Noah", "Zoe", "Adam", "Lily", "Max", "Anna", "Eric", "Kate", "Raj")
OBJECTS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells",
           "stamps", "balloons", "coins", "crayons", "oranges", "toy cars", "beads", "eggs")

# First step: (question statement, reasoning clause). Fields: {n} name, {o} object, {a} {b} numbers.
FIRST: dict[str, tuple[tuple[str, str], ...]] = {
    "add": (("{n} has {a} {o}. {n} gets {b} more {o}.", "{n} has {a} {o} and gets {b} more"),
            ("{n} has {a} {o} and gets {b} more.", "{n} has {a} {o} and gets {b} more")),
    "sub": (("{n} has {a} {o} and gives away {b}.", "{n} has {a} {o} and gives away {b}"),
            ("{n} has {a} {o}. {n} loses {b} of them.", "{n} has {a} {o} and loses {b}"),
            ("{n} has {a} {o} and gives {b} of them to a friend.", "{n} has {a} {o} and gives away {b}")),
    "mul": (("{n} has {a} boxes of {o}. Each box holds {b} {o}.", "{n} has {a} boxes of {b} {o}"),
            ("{n} buys {a} bags with {b} {o} in each bag.", "{n} buys {a} bags of {b} {o}")),
    "div": (("{n} has {a} {o} and splits them equally into {b} bags. {n} keeps one bag.",
             "{n} keeps one of {b} equal bags of {a} {o}"),
            ("{n} shares {a} {o} equally among {b} friends, {n} included.",
             "{n} shares {a} {o} equally among {b} friends")),
}
# Later steps act on the running total: (statement, clause); {b} is the step's number.
LATER: dict[str, tuple[tuple[str, str], ...]] = {
    "add": (("Then {n} gets {b} more {o}.", "then {n} gets {b} more"),
            ("Then {n} finds {b} more.", "then {n} finds {b} more")),
    "sub": (("Then {n} gives away {b} {o}.", "then {n} gives away {b}"),
            ("Then {n} loses {b} of them.", "then {n} loses {b}")),
}
QUESTION: dict[str, str] = {
    "add": "How many {o} does {n} have now?",
    "sub": "How many {o} does {n} have left?",
    "mul": "How many {o} does {n} have in all?",
    "div": "How many {o} does {n} get?",
}

_ANSWER = re.compile(r"answer[\s*_]*[:：]", re.IGNORECASE)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


class WordProblemsConfig(BaseModel):
    """Knobs of the word-problem task; the defaults are calibrated for SmolLM2-135M-Instruct."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["word_problems"] = "word_problems"
    ops: list[Op] = ["add"]
    """Operation of the first step, mixed uniformly: add, sub (never below 0), mul (boxes of), div (exact shares)."""
    numbers: tuple[int, int] = (1, 10)
    """[lo, hi] of every add/sub number (the starting amount and each amount added or taken away)."""
    factors: tuple[int, int] = (2, 10)
    """[lo, hi] of both mul factors, and of the divisor and quotient of div."""
    steps: tuple[int, int] = (1, 1)
    """[lo, hi] operations per problem, each count equally likely; steps after the first add or subtract."""
    split_by: Literal["numbers", "text"] = "text"
    """What a problem is for the disjoint splits: its arithmetic (no eval sum is ever trained on, under any
    wording; needs a wide number range) or its full text (same sum, other name or object may cross splits)."""
    instruction: str = INSTRUCTION
    """Appended to every problem; scoring needs the model to end with 'Answer: <number>'."""
    seed: int = 0
    """Seeds the split hash and every problem stream."""

    _ops = field_validator("ops")(lambda cls, ops: check_ops(ops, "add, sub, mul, div"))
    _numbers = field_validator("numbers")(lambda cls, v: check_range(v, 1_000_000, strict=True))
    _factors = field_validator("factors")(lambda cls, v: check_range(v, 1000, strict=True))
    _steps = field_validator("steps")(lambda cls, v: check_range(v, 4))

    @model_validator(mode="after")
    def _later_steps(self) -> "WordProblemsConfig":
        if self.steps[1] > 1 and not {"add", "sub"} & set(self.ops):
            raise ValueError(f"steps {list(self.steps)} need add or sub in ops (later steps add or subtract); "
                             "add one or set steps: [1, 1]")
        return self


def parse_answer(completion: str) -> Decimal | None:
    """The number after the last "Answer:" in `completion`, or None.

    Tolerates "**Answer:** 34", "Answer: 34 apples", "Answer: $1,200", "answer: 34." and
    "Answer: 8 + 6 = 14" (the number after the last "=" on that line).
    """
    found = list(_ANSWER.finditer(completion))
    if not found:
        return None
    rest = completion[found[-1].end():].lstrip(" \t*_$")
    line = rest.lstrip("\n ").split("\n", 1)[0] if rest.startswith("\n") else rest.split("\n", 1)[0]
    if "=" in line:
        line = line.rsplit("=", 1)[1]
    match = _NUMBER.search(line.replace("*", " ").replace("$", " "))
    if match is None:
        return None
    try:
        return Decimal(match.group().replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex only matches valid numbers
        return None


def _fmt(value: Decimal) -> str:
    """A Decimal as plain text: 34, 34.5 (never 3.4E+1)."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


class WordProblemsTask(ProceduralTask):
    """Templated one- or multi-step word problems scored on the number after 'Answer:'."""

    name = "word_problems"

    def __init__(self, cfg: WordProblemsConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self._later = [op for op in cfg.ops if op in LATER] or ["add", "sub"]

    def _first(self, op: str, rng: random.Random) -> tuple[int, int, int]:
        """(a, b, result) of the first step."""
        lo, hi = self.cfg.numbers
        flo, fhi = self.cfg.factors
        if op == "add":
            a, b = rng.randint(lo, hi), rng.randint(lo, hi)
            return a, b, a + b
        if op == "sub":
            a, b = sorted((rng.randint(lo, hi), rng.randint(lo, hi)), reverse=True)
            return a, b, a - b
        x, y = rng.randint(flo, fhi), rng.randint(flo, fhi)
        if op == "mul":
            return x, y, x * y
        return x * y, y, x  # div: x*y shared among y gives x

    def _later_step(self, op: str, total: int, rng: random.Random) -> tuple[str, int] | None:
        """(op, b) of a later step on `total`, or None when sub cannot stay >= 0."""
        lo, hi = self.cfg.numbers
        if op == "sub":
            if total < lo:
                return None
            return op, rng.randint(lo, min(hi, total))
        return op, rng.randint(lo, hi)

    def generate(self, rng: random.Random) -> Prompt:
        cfg = self.cfg
        steps = rng.randint(*cfg.steps)
        name, obj = rng.choice(NAMES), rng.choice(OBJECTS)
        op = rng.choice(cfg.ops)
        a, b, total = self._first(op, rng)
        statement, clause = rng.choice(FIRST[op])
        fields = {"n": name, "o": obj}
        text = [statement.format(a=a, b=b, **fields)]
        reasons = [f"{clause.format(a=a, b=b, **fields)}, so {a} {SYMBOL[op]} {b} = {total}"]
        chain, numbers = [op], [a, b]
        for _ in range(steps - 1):
            step = self._later_step(rng.choice(self._later), total, rng)
            if step is None:
                step = self._later_step("add", total, rng)
            later, n = step  # type: ignore[misc]
            new = total + n if later == "add" else total - n
            statement, clause = rng.choice(LATER[later])
            text.append(statement.format(b=n, **fields))
            reasons.append(f"{clause.format(b=n, **fields)}, so {total} {SYMBOL[later]} {n} = {new}")
            chain.append(later)
            numbers.append(n)
            total = new
        text.append(QUESTION[chain[-1]].format(**fields))
        text.append(cfg.instruction)
        reference = ". Then ".join(r[0].upper() + r[1:] if i == 0 else r.removeprefix("then ")
                                   for i, r in enumerate(reasons))
        ops = "+".join(chain)
        return Prompt(
            id=f"{ops}:{':'.join(map(str, numbers))}:{name}:{obj}",
            text=" ".join(text),
            answer=str(total),
            reference=f"{reference}.\nAnswer: {total}",
            meta={"op": ops, "numbers": numbers, "steps": steps},
        )

    def canonical(self, prompt: Prompt) -> str:
        """With split_by numbers, the arithmetic, not the wording: a sum lives in one split
        whatever the name or object; add ignores operand order (8 + 6 and 6 + 8 share a
        split). With split_by text, the prompt itself."""
        if self.cfg.split_by == "text":
            return prompt.text
        op, numbers = prompt.meta["op"], list(prompt.meta["numbers"])
        if op.startswith("add") or op.startswith("mul"):
            numbers[:2] = sorted(numbers[:2])
        return f"{op}:{':'.join(map(str, numbers))}"

    def extract(self, completion: str) -> str | None:
        """The number after the last "Answer:" as plain text ("1,200" -> "1200"), or None."""
        value = parse_answer(completion)
        return None if value is None else _fmt(value)

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """1.0 when the extracted number equals the gold answer numerically."""
        if answer is None or prompt.answer is None:
            return 0.0
        try:
            return 1.0 if Decimal(answer.replace(",", "")) == Decimal(prompt.answer) else 0.0
        except InvalidOperation:
            return 0.0


@TASKS.register("word_problems", WordProblemsConfig)
def word_problems(cfg: WordProblemsConfig) -> WordProblemsTask:
    """Templated English word problems (add/sub/mul/div, 1-4 steps) ending in 'Answer: N' (for pretrained chat models)."""
    return WordProblemsTask(cfg)
