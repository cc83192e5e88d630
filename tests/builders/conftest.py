"""Hand-made scored samples for builder tests."""
from __future__ import annotations

import pytest

from sharpen.types import Completion, Prompt, Sample, Scored


def scored(pid: str, index: int, text: str, reward: float, reference: str | None = None,
           token_ids: list[int] | None = None, logprobs: list[float] | None = None) -> Scored:
    prompt = Prompt(id=pid, text=f"q{pid}=", answer=None, reference=reference)
    ids = token_ids if token_ids is not None else [ord(c) for c in text]
    lps = logprobs if logprobs is not None else [-0.1 * (i + 1) for i in range(len(ids))]
    return Scored(Sample(prompt, Completion(text, ids, lps, True), index), reward=reward)


@pytest.fixture
def make_scored():
    return scored
