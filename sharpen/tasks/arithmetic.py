"""Multi-digit integer arithmetic: the embedded default task, learnable by a tiny model.

The format is chosen so a ~0.5M-parameter character-level transformer trained from
scratch on CPU reaches *partial* competence in ~400 steps at lr 1e-3 (see
benchmarks/seed_calibration.py), leaving room for self-training to improve it:

- Every operand is zero-padded to a fixed `width` and written least-significant digit
  first, and so is the answer. The model then emits each digit in the order carries
  propagate: digit i depends only on digits <= i and one carry, never on digits it has
  not written yet. Fixed widths put digit i at the same offset in every problem.
- Multiplication is by one digit, with a scratchpad of (digit, carry) pairs, one per
  multiplicand digit, before `|`; then the reversed answer. Without the scratchpad the
  prototype's multiplication barely moved. Only the text after the last `|` is scored,
  so the scratchpad is free-form work, as in chain-of-thought tasks.
- Subtraction keeps a >= b, so the result is never negative. A sign would break the
  one-pass order: whether a < b is decided by the *most* significant digits, which come
  last in this layout, yet it changes every digit of |a - b| from the first one on.

Worked examples (width 4; the sampler appends eos, which is not part of a completion):

    347 + 25 = 372    prompt "7430+5200="   completion "27300"            (width+1 digits)
    347 - 25 = 322    prompt "7430-5200="   completion "2230"             (width digits)
    347 * 6  = 2082   prompt "7430*6="      completion "24820220|28020"   (width+1 digits)

In the multiplication scratchpad "24 82 02 20" (spaces added here only): 7*6 = 42 ->
digit 2 carry 4; 4*6+4 = 28 -> 8, 2; 3*6+2 = 20 -> 0, 2; 0*6+2 = 2 -> 2, 0. The answer
"28020" is those digits followed by the final carry, read backwards as 02082.

Difficulty level d: the larger operand has exactly d digits and the other up to d
(multiplication: a d-digit multiplicand times a digit 0-9); each problem's level is
drawn uniformly from `difficulty`.
"""
from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from sharpen.registry import TASKS
from sharpen.tasks.base import ProceduralTask, change_digits, check_ops, check_range, slip_digit
from sharpen.types import Prompt

Op = Literal["add", "sub", "mul"]
SYMBOL: dict[str, str] = {"add": "+", "sub": "-", "mul": "*"}
ALPHABET = "0123456789+-*=|"  # every character a prompt or gold completion can contain
_DIGITS = re.compile(r"[0-9]+")


class ArithmeticConfig(BaseModel):
    """Knobs of the arithmetic task; the defaults are the calibrated learnable mix."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Literal["arithmetic"] = "arithmetic"
    ops: list[Op] = ["add", "mul"]
    """Operations, mixed uniformly: add, sub (a >= b), mul (by one digit). add+mul is the calibrated mix."""
    difficulty: tuple[int, int] = (2, 4)
    """[lo, hi] digits of the larger operand, each level equally likely. 2-4 gave partial competence."""
    width: int | None = None
    """Digits every operand is zero-padded to (default: difficulty hi). Keep it fixed across a curriculum so the format never changes."""
    seed: int = 0
    """Seeds the split hash and every problem stream."""

    _ops = field_validator("ops")(lambda cls, ops: check_ops(ops, "add, sub, mul"))
    _levels = field_validator("difficulty")(lambda cls, v: check_range(v, 18))

    @field_validator("width")
    @classmethod
    def _fits(cls, width: int | None, info: ValidationInfo) -> int | None:
        hi = info.data.get("difficulty", (1, 1))[1]
        if width is not None and width < hi:
            raise ValueError(f"{width} cannot hold {hi}-digit operands; set width >= {hi}")
        return width


def _rev(value: int, width: int) -> str:
    """`value` zero-padded to `width` digits, least-significant digit first."""
    return str(value).zfill(width)[::-1]


def answer_width(op: str, width: int) -> int:
    """Digits of the written answer: a sum or a one-digit product can carry once more."""
    return width if op == "sub" else width + 1


def mul_scratchpad(a: int, b: int, width: int) -> str:
    """(digit, carry) after each multiplicand digit, least-significant first."""
    pairs, carry = [], 0
    for digit in _rev(a, width):
        carry, out = divmod(int(digit) * b + carry, 10)
        pairs.append(f"{out}{carry}")
    return "".join(pairs)


def make_problem(op: str, a: int, b: int, width: int, digits: int) -> Prompt:
    """The prompt, gold answer and gold completion of `a op b` in the reversed format."""
    if op == "sub" and a < b:
        raise ValueError(f"sub needs a >= b, got {a} - {b}")
    if op == "mul" and not 0 <= b <= 9:
        raise ValueError(f"mul multiplies by one digit, got {b}")
    result = {"add": a + b, "sub": a - b, "mul": a * b}[op]
    answer = _rev(result, answer_width(op, width))
    right = str(b) if op == "mul" else _rev(b, width)
    reference = f"{mul_scratchpad(a, b, width)}|{answer}" if op == "mul" else answer
    return Prompt(
        id=f"{op}:{a}:{b}",
        text=f"{_rev(a, width)}{SYMBOL[op]}{right}=",
        answer=answer,
        reference=reference,
        meta={"op": op, "a": a, "b": b, "digits": digits},
    )


class ArithmeticTask(ProceduralTask):
    """Procedural add/sub/mul problems with exact-match scoring on the reversed answer."""

    name = "arithmetic"

    def __init__(self, cfg: ArithmeticConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed
        self.width = cfg.width or cfg.difficulty[1]
        self._lengths = {answer_width(op, self.width) for op in cfg.ops}

    def generate(self, rng: random.Random) -> Prompt:
        op = rng.choice(self.cfg.ops)
        d = rng.randint(*self.cfg.difficulty)
        a = rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1)  # exactly d digits
        if op == "mul":
            b = rng.randint(0, 9)
        else:
            b = rng.randint(0, 10**d - 1)
            if op == "sub" and a < b or op == "add" and rng.random() < 0.5:
                a, b = b, a
        return make_problem(op, a, b, self.width, d)

    def canonical(self, prompt: Prompt) -> str:
        """Commutative ops ignore operand order, so 12+34 and 34+12 share a split."""
        op, a, b = prompt.meta["op"], prompt.meta["a"], prompt.meta["b"]
        if op in ("add", "mul"):
            a, b = sorted((a, b))
        return f"{op}:{a}:{b}"

    @property
    def judge_verdicts(self) -> tuple[list[str], list[str]]:
        """One character each: the tiny model's vocabulary is characters."""
        return ["y"], ["n"]

    def judge_prompt(self, prompt: Prompt, completion: str) -> str:
        """The tiny model's verification format: the problem, the answer, '?', then y or n
        ("7430+5200=27300?" -> "y"), taught by `sharpen seed` from gold and corrupted answers."""
        return f"{prompt.text}{completion.strip()}?"

    def judge_negative(self, prompt: Prompt, rng: random.Random) -> str | None:
        """A wrong completion shaped like the seed model's own mistakes (measured on its samples:
        sums are off in 1-3 digits; a wrong product almost always has a wrong scratchpad that
        its answer copies faithfully, so an answer-only corruption would teach a check the model
        never needs). add/sub: 1-3 answer digits slipped. mul: one step's product off (a wrong
        digit times b, a slipped carry) carried on correctly, or 1-2 scratchpad digits
        miswritten; the answer is then read off the wrong scratchpad, as the model does."""
        op, a, b = prompt.meta["op"], prompt.meta["a"], prompt.meta["b"]
        if op != "mul":
            return change_digits(prompt.reference or "", rng, leading_zero=True, k=rng.choice((1, 1, 2, 2, 3)))
        if rng.random() < 0.5:
            slipped, step, carry = [], rng.randrange(self.width), 0
            for i, digit in enumerate(_rev(a, self.width)):
                value = int(digit) * b + carry
                if i == step:
                    value = min(99, max(0, value + rng.choice((-1, 1, -b, b, -10, 10))))
                carry, out = divmod(value, 10)
                slipped.append(f"{out}{carry}")
            pad = "".join(slipped)
        else:  # a miswritten digit the answer reads (an output digit, or the final carry)
            pad = list(mul_scratchpad(a, b, self.width))
            for i in rng.sample(list(range(0, len(pad), 2)) + [len(pad) - 1], k=rng.choice((1, 1, 2))):
                pad[i] = slip_digit(pad[i], rng)
            pad = "".join(pad)
        return f"{pad}|{pad[0::2]}{pad[-1]}"

    def paraphrase(self, prompt: Prompt) -> Prompt | None:
        """The same addition with its operands swapped (Co-Reward's equivalent question; same
        gold answer). None for sub and mul, which have no equivalent form here (mul is by one
        digit, so its operands cannot swap)."""
        op, a, b = prompt.meta["op"], prompt.meta["a"], prompt.meta["b"]
        if op != "add" or a == b:
            return None
        return make_problem(op, b, a, self.width, prompt.meta["digits"])

    def paraphrases(self, prompt: Prompt, k: int) -> list[Prompt]:
        """Up to `k` equivalent questions with the same answer, for a cross-question vote: the
        operands swapped, then (a + d) + (b - d) for shifts d drawn from the prompt's id (and
        (a + d) - (b + d) for sub). Rewriting moves d from one operand to the other; it never
        computes the answer. Each is a different digit pattern, so the model's slips on them
        are nearly independent where its samples of one question are not: on the seed, the
        plurality of 32 (16) equivalents' greedy answers was right on 53% (48%) of 497 train
        additions, its own greedy answer on 31% and its own 16-sample majority on 27%
        (benchmarks/vote_agreement.py).
        mul has none (by one digit: rewriting it needs a product)."""
        op, a, b = prompt.meta["op"], prompt.meta["a"], prompt.meta["b"]
        if op == "mul" or k <= 0:
            return []
        top = 10**self.width - 1
        rng = random.Random(f"{self.seed}:paraphrases:{prompt.id}")
        seen = {(a, b)} | ({(b, a)} if op == "add" else set())
        out = [make_problem(op, b, a, self.width, prompt.meta["digits"])] if op == "add" and a != b else []
        if op == "add":  # (a + d) + (b - d): d in [-a, b] keeps both >= 0, and a + d, b - d <= top
            lo, hi = max(-a, b - top), min(b, top - a)
        else:  # (a + d) - (b + d): both grow or shrink together
            lo, hi = -b, top - a
        for _ in range(8 * k):
            if len(out) >= k or hi <= lo:
                break
            d = rng.randint(lo, hi)
            x, y = (a + d, b - d) if op == "add" else (a + d, b + d)
            if op == "add" and rng.random() < 0.5:
                x, y = y, x
            if (x, y) not in seen:
                seen.add((x, y))
                out.append(make_problem(op, x, y, self.width, prompt.meta["digits"]))
        return out[:k]

    def extract(self, completion: str) -> str | None:
        """Text after the last `|` (or all of it); None unless it is answer-length digits."""
        text = completion.strip()
        answer = text.rsplit("|", 1)[-1]
        if not _DIGITS.fullmatch(answer) or len(answer) not in self._lengths:
            return None
        return answer

    def score(self, prompt: Prompt, answer: str | None) -> float:
        """Exact match with the reversed gold answer."""
        return 1.0 if answer is not None and answer == prompt.answer else 0.0


@TASKS.register("arithmetic", ArithmeticConfig)
def arithmetic(cfg: ArithmeticConfig) -> ArithmeticTask:
    """Multi-digit add/sub/mul in reversed-digit format with a carry scratchpad (built-in default)."""
    return ArithmeticTask(cfg)
