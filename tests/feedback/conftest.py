"""A fake task and hand-made samples for feedback tests."""
from __future__ import annotations

from typing import Any

import pytest

from sharpen.progress import RichProgress
from sharpen.types import Completion, Context, Prompt, Sample


class FakeTask:
    """Answer = text after the last '|'; '?' or empty is malformed; 'h' halves the credit."""

    name = "fake"

    def extract(self, completion: str) -> str | None:
        ans = completion.split("|")[-1]
        return None if ans in ("", "?") else ans

    def score(self, prompt: Prompt, answer: str | None) -> float:
        if answer is None:
            return 0.0
        if answer == prompt.answer + "h":
            return 0.5
        return float(answer == prompt.answer)

    def score_batch(self, prompts, completions):
        return [self.score(p, self.extract(c)) for p, c in zip(prompts, completions)]


def make_samples(spec: dict[str, tuple[str, list[str]]]) -> list[Sample]:
    """{prompt id: (gold answer, [completion texts])} -> samples, token ids = char codes - 47."""
    out = []
    for pid, (gold, texts) in spec.items():
        prompt = Prompt(id=pid, text=f"{pid}=", answer=gold)
        for i, t in enumerate(texts):
            out.append(Sample(prompt, Completion(t, [ord(c) - 47 for c in t], [0.0] * len(t), True), i))
    return out


@pytest.fixture(name="make_samples")
def _make_samples_fixture():
    return make_samples


@pytest.fixture
def fake_ctx():
    def make(policy: Any = None, refs: dict[str, Any] | None = None) -> Context:
        return Context(task=FakeTask(), policy=policy, round=1, seed=0, reference=(refs or {}).__getitem__,
                       progress=RichProgress(enabled=False))
    return make
