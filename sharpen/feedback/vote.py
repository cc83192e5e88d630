"""Majority-vote pseudo-labels (TTRL, MM-UPT): reward agreement with the crowd.

Label-free: a prompt's most frequent extracted answer over `n_votes` samples is taken as
its label, and a sample is rewarded 1 if its answer matches. TTRL votes over many samples
(64) and trains on fewer (32): with `n_votes` above `sample.n`, the extra votes are drawn
through the engine with the round's sampling settings and only vote. `correct` still comes
from the task; the statistics say how often the pseudo-label was right (TTRL's guard: on
hard prompts the majority is wrong and gets reinforced) and how often the reward agreed
with ground truth (TTRL: higher than label accuracy, since a wrong label still gives most
wrong answers their correct 0).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, Sequence

from pydantic import Field

from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.seeds import derive_seed
from sharpen.stats import majority_vote  # the same vote as eval's majority accuracy
from sharpen.types import Context, Prompt, Rated, Sample, Scored, group_by_prompt


def extra_votes(prompts: Sequence[Prompt], have: int, n_votes: int, ctx: Context, purpose: str = "votes",
                temperature: float | None = None) -> dict[str, list[str | None]]:
    """Answers of `n_votes - have` more samples per prompt, drawn by the engine (at the round's
    sampling temperature unless one is given) and seeded per (run seed, purpose, round,
    prompt): they vote, they are never trained on."""
    extra = n_votes - have
    if extra <= 0 or not prompts:
        return {p.id: [] for p in prompts}
    if ctx.engine is None or ctx.sampling is None:
        raise RuntimeError("extra votes need the loop's engine and sampling settings (ctx.engine, ctx.sampling)")
    params = replace(ctx.sampling, n=extra, **({} if temperature is None else {"temperature": temperature}))
    seeds = [derive_seed(ctx.seed, purpose, ctx.round, p.id) for p in prompts]
    with ctx.progress(f"sampling {extra} more votes", len(prompts)) as advance:
        groups = ctx.engine.generate([p.text for p in prompts], params, seeds, progress=advance)
    return {p.id: [ctx.task.extract(c.text) for c in g] for p, g in zip(prompts, groups)}


def vote_labels(scored: list[Scored], extra: dict[str, list[str | None]], min_agreement: float = 0.0) -> dict[str, str | None]:
    """Majority answer per prompt over its own samples (in sample order) then the extra votes;
    None where the majority holds less than `min_agreement` of the votes."""
    answers = group_by_prompt(sorted(scored, key=lambda s: s.sample.index))
    return {pid: confident_majority([s.answer for s in g] + extra.get(pid, []), min_agreement) for pid, g in answers.items()}


def confident_majority(votes: Sequence[str | None], min_agreement: float = 0.0) -> str | None:
    """The majority answer if it holds at least `min_agreement` of all votes (malformed ones
    included), else None. The share of votes is the label's confidence: on the seed model,
    majorities holding > 5/8 of 16 votes were right 97% of the time, all majorities 42%
    (benchmarks/vote_agreement.py), the self-consistency filter of LMSI (Huang et al., 2022)."""
    label = majority_vote(votes)
    if label is None or not votes or sum(v == label for v in votes) < min_agreement * len(votes):
        return None
    return label


def reward_agreement(scored: list[Scored], labels: dict[str, str | None], task: Any, name: str) -> list[Scored]:
    """Reward 1 where a sample's answer is its prompt's pseudo-label (none where there is no
    label), and record in `label_correct` whether that label is right (for the audit only)."""
    prompts = {s.sample.prompt.id: s.sample.prompt for s in scored}
    right = {pid: float(lab is not None and task.score(prompts[pid], lab) >= 1.0) for pid, lab in labels.items()}
    for s in scored:
        s.scores["label_correct"] = right[s.sample.prompt.id]
    return relabel(scored, [float(s.answer is not None and s.answer == labels[s.sample.prompt.id]) for s in scored], name)


def label_stats(scored: list[Scored], labels: dict[str, str | None], votes: dict[str, list[str | None]],
                task: Any) -> dict[str, float]:
    """label_accuracy: pseudo-labels that are right; agreement: mean share of a prompt's votes
    for its label (1.0 = every sample agrees: the entropy collapse TTRL warns of);
    reward_accuracy: samples whose vote reward equals their ground truth."""
    prompts = {s.sample.prompt.id: s.sample.prompt for s in scored}
    right = [task.score(prompts[pid], lab) >= 1.0 for pid, lab in labels.items() if lab is not None]
    # agreement of every prompt's own majority, labelled or not (min_agreement hides no collapse)
    agree = [sum(a == top for a in v) / len(v) for v in votes.values() if v and (top := majority_vote(v)) is not None]
    known = [s for s in scored if s.correct is not None]
    out: dict[str, float] = {
        "prompts": len(labels),
        "no_label_rate": sum(lab is None for lab in labels.values()) / max(len(labels), 1),
        "agreement": sum(agree) / len(agree) if agree else 0.0,
    }
    if right:
        out["label_accuracy"] = sum(right) / len(labels)  # a prompt without a label counts as wrong
        out["labelled_accuracy"] = sum(right) / len(right)  # the precision of the labels trained on
    if known:
        out["reward_accuracy"] = sum((s.reward >= 0.5) == bool(s.correct) for s in known) / len(known)
    return out


class VoteConfig(FeedbackConfig):
    """Reward = agreement with the prompt's majority answer (label-free)."""

    kind: Literal["vote"] = "vote"
    n_votes: int | None = Field(None, gt=0, description="votes per prompt (default: the round's sample.n); "
                                                        "more than sample.n draws extra samples that only vote (TTRL: 64 votes, 32 trained)")
    min_agreement: float = Field(0.0, ge=0.0, le=1.0, description="label a prompt only when its majority holds at least this "
                                 "share of the votes (LMSI's self-consistency filter); other prompts get reward 0 everywhere")


@FEEDBACK.register("vote", VoteConfig)
def vote(samples: list[Sample], cfg: VoteConfig, ctx: Context) -> Rated:
    """Majority-vote pseudo-label (TTRL): reward 1 if the sample's answer is the majority answer."""
    scored = verify(samples, ctx.task)
    prompts = list({s.prompt.id: s.prompt for s in samples}.values())
    have = max((s.index for s in samples), default=-1) + 1
    extra = extra_votes(prompts, have, cfg.n_votes or have, ctx)
    labels = vote_labels(scored, extra, cfg.min_agreement)
    scored = reward_agreement(scored, labels, ctx.task, cfg.signal_name())
    votes: dict[str, list[str | None]] = {pid: list(extra.get(pid, [])) for pid in labels}
    for s in scored:
        votes[s.sample.prompt.id].append(s.answer)
    return Rated(scored, {**label_stats(scored, labels, votes, ctx.task), "n_votes": have + len(next(iter(extra.values()), []))})
