"""Majority-vote pseudo-labels (TTRL, MM-UPT; METHODS §5): reward agreement with the crowd.

Label-free: a prompt's most frequent extracted answer is taken as its label, and a sample
is rewarded 1 if its answer matches. `correct` still comes from the task, and
`label_correct` records whether the pseudo-label itself was right (TTRL's guard: on hard
prompts the majority is wrong and gets reinforced).
"""
from __future__ import annotations

from typing import Literal


from sharpen.feedback.verifier import relabel, verify
from sharpen.monitor.metrics import majority_vote  # the same vote as eval's majority accuracy
from sharpen.feedback.base import FeedbackConfig
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Sample, Scored


def vote_rewards(scored: list[Scored]) -> tuple[list[float], dict[str, str | None]]:
    """Per sample 1.0 if its answer equals its prompt's majority answer, else 0.0; plus the labels."""
    answers: dict[str, list[str | None]] = {}
    for s in sorted(scored, key=lambda s: s.sample.index):
        answers.setdefault(s.sample.prompt.id, []).append(s.answer)
    labels = {pid: majority_vote(a) for pid, a in answers.items()}
    rewards = [float(s.answer is not None and s.answer == labels[s.sample.prompt.id]) for s in scored]
    return rewards, labels


class VoteConfig(FeedbackConfig):
    """Reward = agreement with the prompt's majority answer (label-free)."""

    kind: Literal["vote"] = "vote"


@FEEDBACK.register("vote", VoteConfig)
def vote(samples: list[Sample], cfg: VoteConfig, ctx: Context) -> list[Scored]:
    """Majority-vote pseudo-label (TTRL): reward 1 if the sample's answer is the majority answer."""
    scored = verify(samples, ctx.task)
    rewards, labels = vote_rewards(scored)
    prompts = {s.sample.prompt.id: s.sample.prompt for s in scored}
    label_correct = {pid: float(ctx.task.score(prompts[pid], label) >= 1.0) for pid, label in labels.items()}
    for s in scored:
        s.scores["label_correct"] = label_correct[s.sample.prompt.id]
    return relabel(scored, rewards, "vote")
