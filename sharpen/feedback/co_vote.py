"""Co-Reward (Zhang et al., 2025): vote labels cross-checked between a question
and equivalent rephrasings of it.

Each prompt's rollouts are rewarded by agreement with the majority answer of its
*paraphrases'* rollouts, instead of its own: a model that locks onto a wrong answer for
one wording has to do so for the others too before the wrong label pays. The paraphrases
come from the task (`task.paraphrases(prompt, k)`, or the single `task.paraphrase(prompt)`;
arithmetic swaps the operands of an addition, then shifts an amount from one operand to
the other); their rollouts are drawn by the engine and only vote. With several
paraphrases their votes are pooled, which is where the label gains over the model's own
vote: its slips on different digit patterns are nearly independent. A prompt without a
paraphrase falls back to its own majority (TTRL), and the statistics count how many did.
`min_agreement` leaves a prompt unlabelled (reward 0 for all its samples) when the label
holds less than that share of its votes. The agreement rate between maj(x) and the cross
label is the paper's monitor: when it falls, the labels are drifting. (The paper also
trains on the paraphrases' rollouts; here they only label.)
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import verify
from sharpen.feedback.vote import confident_majority, extra_votes, label_stats, reward_agreement, vote_labels
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Prompt, Rated, Sample


class CoVoteConfig(FeedbackConfig):
    """Reward = agreement with the majority answer of the prompt's paraphrases (label-free)."""

    kind: Literal["co_vote"] = "co_vote"
    n_votes: int | None = Field(None, gt=0, description="rollouts of each paraphrase that vote (default: the round's sample.n)")
    n_paraphrases: int = Field(1, gt=0, description="equivalent questions per prompt whose votes are pooled "
                                                    "(the task's `paraphrases`; 1: Co-Reward's one rephrasing)")
    temperature: float | None = Field(None, ge=0, description="sampling temperature of the paraphrases' rollouts "
                                                              "(default: the round's; 0: one greedy answer each)")
    min_agreement: float = Field(0.0, ge=0.0, le=1.0, description="label a prompt only when its label holds at least "
                                 "this share of its votes; other prompts get reward 0 everywhere")


def paraphrases(prompts: list[Prompt], task: object, k: int = 1) -> dict[str, list[Prompt]]:
    """prompt id -> up to k paraphrases, for the prompts the task can rephrase."""
    many = getattr(task, "paraphrases", None)
    one = getattr(task, "paraphrase", None)
    out: dict[str, list[Prompt]] = {}
    for p in prompts:
        qs = many(p, k) if many is not None else ([q] if one is not None and (q := one(p)) is not None else [])
        if qs:
            out[p.id] = qs
    return out


def rephrased_votes(samples: list[Sample], ctx: Context, k: int, n_votes: int | None, temperature: float | None,
                    feedback: str, purpose: str) -> tuple[list[Prompt], dict[str, list[Prompt]], dict[str, list[str | None]]]:
    """(the samples' prompts, prompt id -> up to k rephrasings, rephrasing id -> its answers):
    each rephrasing sampled `n_votes` times (default: as many as the prompt's own samples; one
    greedy answer at temperature 0). The rollouts only vote; they are never trained on."""
    prompts = list({s.prompt.id: s.prompt for s in samples}.values())
    para = paraphrases(prompts, ctx.task, k)
    if not para:
        raise ValueError(f"feedback {feedback}: task {ctx.task.name!r} rephrases none of its prompts (no task.paraphrases); "
                         "use feedback: vote")
    have = max((s.index for s in samples), default=-1) + 1
    n = 1 if temperature == 0 else (n_votes or have)  # greedy answers do not vary: one each
    unique = list({q.id: q for qs in para.values() for q in qs}.values())
    return prompts, para, extra_votes(unique, 0, n, ctx, purpose=purpose, temperature=temperature)


@FEEDBACK.register("co_vote", CoVoteConfig)
def co_vote(samples: list[Sample], cfg: CoVoteConfig, ctx: Context) -> Rated:
    """Co-Reward: reward 1 if the sample's answer is the majority answer of its paraphrases' rollouts."""
    scored = verify(samples, ctx.task)
    prompts, para, para_votes = rephrased_votes(samples, ctx, cfg.n_paraphrases, cfg.n_votes, cfg.temperature,
                                                "co_vote", "paraphrase")
    own = vote_labels(scored, {})
    pooled = {pid: [a for q in qs for a in para_votes[q.id]] for pid, qs in para.items()}
    cross = {pid: confident_majority(v, cfg.min_agreement) for pid, v in pooled.items()}
    labels = {**vote_labels(scored, {}, cfg.min_agreement), **cross}  # a paraphrased prompt takes the cross label
    scored = reward_agreement(scored, labels, ctx.task, cfg.signal_name())
    votes: dict[str, list[str | None]] = {pid: list(pooled.get(pid, [])) for pid in labels}
    for s in scored:
        if s.sample.prompt.id not in para:
            votes[s.sample.prompt.id].append(s.answer)
    both = [pid for pid in para if own[pid] is not None and cross[pid] is not None]
    stats = label_stats(scored, labels, votes, ctx.task)
    stats.update({"paraphrased": len(para) / len(prompts), "paraphrases": sum(map(len, para.values())) / max(len(para), 1),
                  "cross_agreement": sum(own[p] == cross[p] for p in both) / len(both) if both else 0.0})
    return Rated(scored, stats)
