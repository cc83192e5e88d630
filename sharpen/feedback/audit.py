"""Signal audit: how well a reward separates correct from wrong samples, every round.

A label-free signal (a vote, a confidence, a judge) is only as good as its agreement with
ground truth; this is where a run sees it drift or get gamed. Precision and recall are at
the signal's threshold; AUROC needs no threshold. `auroc_within_prompt` ranks only samples
of the same prompt, which is what a group-relative advantage (GRPO) and best-vs-worst
pairs actually use: a signal can separate easy from hard prompts (high AUROC) and still
rank a prompt's own samples at random. `score_round` audits every signal it scores with;
the statistics themselves are the shared ones of `sharpen.stats`.
"""
from __future__ import annotations

from typing import Any, Sequence

from sharpen.stats import auroc, precision_recall
from sharpen.types import Scored, group_by_prompt


def audit_signal(scored: list[Scored], values: Sequence[float], threshold: float | None) -> dict[str, Any]:
    """Audit one signal (`values[i]` for `scored[i]`) against the verifier's `correct`.
    threshold None: a sample is rewarded when its value is above its prompt's mean."""
    known = [(s, v) for s, v in zip(scored, values) if s.correct is not None]
    out: dict[str, Any] = {"mean": sum(values) / len(values) if values else None,
                           "threshold": threshold if threshold is not None else "prompt_mean"}
    if not known:
        return {**out, "ground_truth": False}
    by_prompt = group_by_prompt(known, key=lambda sv: sv[0].sample.prompt.id)
    if threshold is None:
        means = {pid: sum(v for _, v in g) / len(g) for pid, g in by_prompt.items()}
        rewarded = [v > means[s.sample.prompt.id] + 1e-12 for s, v in known]
    else:
        rewarded = [v > threshold for _, v in known]
    labels = [bool(s.correct) for s, _ in known]
    vals = [v for _, v in known]
    precision, recall = precision_recall(vals, labels, rewarded)
    within = [a for g in by_prompt.values() if (a := auroc([v for _, v in g], [bool(s.correct) for s, _ in g])) is not None]
    return {**out, "precision": precision, "recall": recall, "auroc": auroc(vals, labels),
            "auroc_within_prompt": sum(within) / len(within) if within else None,
            "prompts_mixed": len(within), "rewarded_rate": sum(rewarded) / len(rewarded),
            "correct_rate": sum(labels) / len(labels)}
