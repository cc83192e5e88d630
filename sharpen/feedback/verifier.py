"""Ground-truth feedback: the task's own scorer (STaR, ReST-EM, RLVR).

`verify` is also what every label-free feedback calls first, so `correct` is recorded
even when training ignores it: monitors measure reward precision and hacking from it.
"""
from __future__ import annotations

from typing import Literal


from sharpen.feedback.base import FeedbackConfig
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Sample, Scored, Task


def verify(samples: list[Sample], task: Task) -> list[Scored]:
    """reward = task score in [0, 1]; correct = full credit; answer = the extracted answer."""
    scores = task.score_batch([s.prompt for s in samples], [s.text for s in samples])
    return [Scored(s, reward=float(r), correct=r >= 1.0, answer=task.extract(s.text), scores={"verifier": float(r)})
            for s, r in zip(samples, scores)]


def relabel(scored: list[Scored], rewards: list[float], name: str) -> list[Scored]:
    """Train on a different reward, keeping the verifier's `correct` for monitoring."""
    for s, r in zip(scored, rewards):
        s.reward = float(r)
        s.scores[name] = float(r)
    return scored


class VerifierConfig(FeedbackConfig):
    """The task's ground-truth scorer (needs labels)."""

    kind: Literal["verifier"] = "verifier"


@FEEDBACK.register("verifier", VerifierConfig)
def verifier(samples: list[Sample], cfg: VerifierConfig, ctx: Context) -> list[Scored]:
    """Ground truth: reward = the task's score of the extracted answer."""
    return verify(samples, ctx.task)
