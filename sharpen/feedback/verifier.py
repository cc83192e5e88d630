"""Ground-truth feedback: the task's own scorer (STaR, ReST-EM, RLVR).

`verify` is also what every label-free feedback calls first, so `correct` is recorded
even when training ignores it: monitors measure reward precision and hacking from it.
"""
from __future__ import annotations

from typing import Literal


from sharpen.feedback.base import FeedbackConfig
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample, Scored, Task


def verify(samples: list[Sample], task: Task) -> list[Scored]:
    """reward = task score in [0, 1]; correct = full credit; answer = the extracted answer."""
    scores = task.score_batch([s.prompt for s in samples], [s.text for s in samples])
    return [Scored(s, reward=float(r), correct=r >= 1.0, answer=task.extract(s.text), scores={"verifier": float(r)})
            for s, r in zip(samples, scores)]


def hacking_stats(scored: list[Scored], task: Task) -> dict[str, int]:
    """How many completions show signs of reward hacking (code tasks define
    `reward_hacking_signs`: top-level code after the body, dunder overrides), and how many
    of those the task still rewarded; empty for tasks without the hook."""
    signs = getattr(task, "reward_hacking_signs", None)
    if signs is None:
        return {}
    flagged = [s for s in scored if signs(s.sample.text)]
    return {"reward_hacking": len(flagged), "reward_hacking_rewarded": sum(s.reward > 0 for s in flagged)}


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
def verifier(samples: list[Sample], cfg: VerifierConfig, ctx: Context) -> Rated | list[Scored]:
    """Ground truth: reward = the task's score of the extracted answer (plus hacking counts for code tasks)."""
    scored = verify(samples, ctx.task)
    stats = hacking_stats(scored, ctx.task)
    return Rated(scored, stats) if stats else scored
