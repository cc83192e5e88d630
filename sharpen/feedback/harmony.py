"""Self-Harmony (Wang et al., 2025, arXiv 2511.01191): the pseudo-label is the answer whose
frequency stays high across a question and its reframings, by their harmonic mean.

TTRL's majority vote collapses onto "spurious yet popular" answers: when the model slips
the same way every time on one wording, the wrong answer wins the vote. Self-Harmony
samples the original question and a reframed one, and picks the answer maximising the
harmonic mean of its frequencies in the views: an answer must be common in *every* view,
so a view-dependent slip scores low however popular it is in one. Rollouts of the
original are rewarded 1 for the label (GRPO), as in TTRL; the views' rollouts only vote.

Here the reframer is the task (`task.paraphrases`: for arithmetic, b+a, then
(a+d)+(b-d)), not the model as in the paper, and `n_views` may exceed the paper's one
reframing. With several views the plain harmonic mean vetoes an answer that one view never
sampled; `smoothing` adds a pseudo-count to every view's count of every candidate, so a
missing view penalises instead of vetoing. On the seed's 497 train additions
(`benchmarks/vote_agreement.py`, 16 votes a view; greedy right on 31.2%, own 16-vote majority
27%, Co-Reward's plurality of 32 greedy answers 53.3%) the label was right on:

    T    reframings  plain HM  smoothing 0.5  pooled plurality of the same samples
    0.8   1          33.4      33.6           33.0      (the paper's setting)
    0.8  16           6.8      56.3           57.5
    0.5   8          12.3      53.9           53.9
    0.5  16           5.6      60.2           55.9      (self_harmony.yaml)

The number of views and their temperature make the label; the harmonic mean adds 4 points
over pooling at the recipe's setting and nothing at T 0.8.

A prompt without a reframing keeps its own view: its label is its majority (TTRL).
"""
from __future__ import annotations

from collections import Counter
from typing import Literal, Sequence

from pydantic import Field

from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.co_vote import rephrased_votes
from sharpen.feedback.verifier import verify
from sharpen.feedback.vote import label_stats, reward_agreement, vote_labels
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample


class HarmonyConfig(FeedbackConfig):
    """Reward = agreement with the answer most stable across reframings (label-free)."""

    kind: Literal["harmony"] = "harmony"
    n_views: int = Field(1, gt=0, description="reframed questions per prompt (the task's `paraphrases`; 1: the paper's one reframing)")
    n_votes: int | None = Field(None, gt=0, description="rollouts of each reframed question (default: the round's sample.n)")
    temperature: float | None = Field(None, gt=0, description="sampling temperature of the reframed rollouts (default: the round's)")
    smoothing: float = Field(0.0, ge=0.0, description="pseudo-count added to each view's count of every candidate answer "
                                                      "(0: the paper's harmonic mean, where a view without the answer vetoes it)")


def harmonic_label(views: Sequence[Sequence[str | None]], smoothing: float = 0.0) -> tuple[str | None, float]:
    """(label, its score): the answer maximising the harmonic mean over views of
    (count + smoothing) / (view size + smoothing). Malformed answers (None) never win; ties go
    to the higher pooled count, then to the answer seen first (views in order), so the label
    is deterministic. (None, 0.0) when no answer scores above 0."""
    counts = [Counter(a for a in v if a is not None) for v in views if v]
    sizes = [len(v) for v in views if v]
    order = list(dict.fromkeys(a for v in views for a in v if a is not None))

    def score(a: str) -> float:
        shares = [(c[a] + smoothing) / (n + smoothing) for c, n in zip(counts, sizes)]
        return 0.0 if min(shares) <= 0 else len(shares) / sum(1 / s for s in shares)

    ranked = sorted(order, key=lambda a: (-score(a), -sum(c[a] for c in counts), order.index(a)))
    if not ranked or score(ranked[0]) <= 0:
        return None, 0.0
    return ranked[0], score(ranked[0])


@FEEDBACK.register("harmony", HarmonyConfig)
def harmony(samples: list[Sample], cfg: HarmonyConfig, ctx: Context) -> Rated:
    """Self-Harmony: reward 1 if the sample's answer is the harmonic-mean label of its views."""
    scored = verify(samples, ctx.task)
    prompts, para, reframed = rephrased_votes(samples, ctx, cfg.n_views, cfg.n_votes, cfg.temperature, "harmony", "reframe")
    own: dict[str, list[str | None]] = {p.id: [] for p in prompts}
    for s in sorted(scored, key=lambda s: s.sample.index):
        own[s.sample.prompt.id].append(s.answer)
    labels: dict[str, str | None] = {}
    scores: list[float] = []
    for pid, answers in own.items():
        labels[pid], sc = harmonic_label([answers] + [reframed[q.id] for q in para.get(pid, [])], cfg.smoothing)
        scores.append(sc)
    scored = reward_agreement(scored, labels, ctx.task, cfg.signal_name())
    majority = vote_labels(scored, {})
    stats = label_stats(scored, labels, own, ctx.task)  # agreement: of the own view, TTRL's collapse watch
    stats.update({"paraphrased": len(para) / len(prompts), "views": 1 + sum(map(len, para.values())) / max(len(para), 1),
                  "harmonic_score": sum(scores) / len(scores),
                  "majority_kept": sum(labels[p] == majority[p] for p in para) / len(para)})
    return Rated(scored, stats)
