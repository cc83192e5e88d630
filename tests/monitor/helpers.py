"""Hand-built scored samples for monitor tests."""
from __future__ import annotations

from sharpen.types import Completion, Prompt, Sample, Scored


def scored(pid: str, text: str, correct: bool | None, reward: float | None = None, answer: str | None = "<text>",
           tokens: list[int] | None = None, index: int = 0) -> Scored:
    toks = tokens if tokens is not None else [ord(c) for c in text]
    c = Completion(text, toks, [-0.5] * len(toks), True)
    r = float(bool(correct)) if reward is None else reward
    return Scored(Sample(Prompt(pid, f"q{pid}"), c, index), r, correct, text if answer == "<text>" else answer)
