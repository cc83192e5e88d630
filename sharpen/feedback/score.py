"""One round's scoring: the recipe's feedback, then the audit of every signal it computed.

The loop calls `score_round` and gets the scored samples, the feedback's own statistics
and the signal audit (`sharpen.feedback.audit`) for metrics.json.
"""
from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from sharpen.feedback.audit import audit_signal
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample, Scored


def as_rated(out: Rated | list[Scored]) -> Rated:
    """A feedback may return `Rated` (with statistics) or a bare list of `Scored`."""
    return out if isinstance(out, Rated) else Rated(list(out), {})


def run_feedback(samples: list[Sample], cfg: BaseModel, ctx: Context) -> Rated:
    rated = as_rated(FEEDBACK.get(str(getattr(cfg, "kind"))).fn(samples, cfg, ctx))
    if len(rated.scored) != len(samples):
        raise RuntimeError(f"feedback {getattr(cfg, 'kind')!r} returned {len(rated.scored)} scores for {len(samples)} samples")
    return rated


def _name(cfg: Any) -> str:
    return cfg.signal_name() if hasattr(cfg, "signal_name") else str(getattr(cfg, "kind", "reward"))


def _threshold(cfg: Any) -> float | None:
    return cfg.audit_threshold() if hasattr(cfg, "audit_threshold") else 0.5


def score_round(samples: list[Sample], cfg: BaseModel, ctx: Context) -> tuple[list[Scored], dict[str, Any], dict[str, Any]]:
    """(scored samples, feedback statistics, audit by signal name).

    The audit covers the training reward under the feedback's name, each part of a
    `combine`, and every scorer under `feedback.audit` (run on copies of the samples, its
    values added to each sample's `scores` for samples.jsonl)."""
    rated = run_feedback(samples, cfg, ctx)
    scored = rated.scored
    audit: dict[str, Any] = {_name(cfg): audit_signal(scored, [s.reward for s in scored], _threshold(cfg))}
    for part in getattr(cfg, "parts", []) or []:  # combine: audit each part as well
        name = _name(part)
        if all(name in s.scores for s in scored):
            audit[name] = audit_signal(scored, [s.scores[name] for s in scored], _threshold(part))
    stats = dict(rated.stats)
    for extra in getattr(cfg, "audit", []) or []:
        name = _name(extra)
        other = run_feedback(copy.deepcopy(samples), extra, ctx)
        values = [o.reward for o in other.scored]
        for s, v in zip(scored, values):
            s.scores[name] = v
        audit[name] = audit_signal(scored, values, _threshold(extra))
        if other.stats:
            stats[name] = other.stats
    return scored, stats, audit
