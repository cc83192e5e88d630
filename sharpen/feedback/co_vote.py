"""Co-Reward (Zhang et al., 2025; METHODS §5): vote labels cross-checked between a question
and an equivalent rephrasing of it.

Each prompt's rollouts are rewarded by agreement with the majority answer of its
*paraphrase's* rollouts, instead of its own: a model that locks onto a wrong answer for
one wording has to do so for the other wording too before the wrong label pays. The
paraphrase comes from the task (`task.paraphrase(prompt)`; arithmetic swaps the operands
of an addition); its rollouts are drawn by the engine and only vote. A prompt without a
paraphrase falls back to its own majority (TTRL), and the statistics count how many did.
The agreement rate between maj(x) and maj(x') is the paper's monitor: when it falls, the
labels are drifting. (The paper also trains on the paraphrases' rollouts; here they only
label.)
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.feedback.vote import extra_votes, label_stats, vote_labels
from sharpen.monitor.metrics import majority_vote
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Prompt, Rated, Sample


class CoVoteConfig(FeedbackConfig):
    """Reward = agreement with the majority answer of the prompt's paraphrase (label-free)."""

    kind: Literal["co_vote"] = "co_vote"
    n_votes: int | None = Field(None, gt=0, description="rollouts of each paraphrase that vote (default: the round's sample.n)")


def paraphrases(prompts: list[Prompt], task: object) -> dict[str, Prompt]:
    """prompt id -> its paraphrase, for the prompts the task can rephrase."""
    fn = getattr(task, "paraphrase", None)
    if fn is None:
        return {}
    return {p.id: q for p in prompts if (q := fn(p)) is not None}


@FEEDBACK.register("co_vote", CoVoteConfig)
def co_vote(samples: list[Sample], cfg: CoVoteConfig, ctx: Context) -> Rated:
    """Co-Reward: reward 1 if the sample's answer is the majority answer of its paraphrase's rollouts."""
    scored = verify(samples, ctx.task)
    prompts = list({s.prompt.id: s.prompt for s in samples}.values())
    para = paraphrases(prompts, ctx.task)
    if not para:
        raise ValueError(f"feedback co_vote: task {ctx.task.name!r} rephrases none of its prompts (no task.paraphrase); "
                         "use feedback: vote")
    have = max((s.index for s in samples), default=-1) + 1
    # the paraphrases' rollouts: all n of them vote (have = 0 own samples)
    para_votes = extra_votes(list(para.values()), 0, cfg.n_votes or have, ctx, purpose="paraphrase")
    own = vote_labels(scored, {})
    cross = {pid: majority_vote(para_votes[q.id]) for pid, q in para.items()}
    labels = {pid: cross.get(pid, own[pid]) if pid in para else own[pid] for pid in own}
    rewards = [float(s.answer is not None and s.answer == labels[s.sample.prompt.id]) for s in scored]
    by_id = {p.id: p for p in prompts}
    for s in scored:
        pid = s.sample.prompt.id
        s.scores["label_correct"] = float(labels[pid] is not None and ctx.task.score(by_id[pid], labels[pid]) >= 1.0)
    scored = relabel(scored, rewards, cfg.signal_name())
    votes: dict[str, list[str | None]] = {pid: list(para_votes[para[pid].id]) if pid in para else [] for pid in labels}
    for s in scored:
        if s.sample.prompt.id not in para:
            votes[s.sample.prompt.id].append(s.answer)
    both = [pid for pid in para if own[pid] is not None and cross[pid] is not None]
    stats = label_stats(scored, labels, votes, ctx.task)
    stats.update({"paraphrased": len(para) / len(prompts),
                  "cross_agreement": sum(own[p] == cross[p] for p in both) / len(both) if both else 0.0})
    return Rated(scored, stats)
