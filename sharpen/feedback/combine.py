"""A weighted sum of scorers: `{kind: combine, parts: [verifier, {kind: judge}], weights: [1, 0.5]}`.

Each part's reward is kept in the samples' `scores` under its name, and the audit audits
each part next to the sum, so one can see which part carries the signal.
"""
from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sharpen.feedback.base import FeedbackConfig, validate_feedback
from sharpen.feedback.verifier import verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample


class CombineConfig(FeedbackConfig):
    """Reward = sum_i weights[i] * reward of parts[i]."""

    default_threshold: ClassVar[float | None] = None  # a weighted sum has no natural threshold
    kind: Literal["combine"] = "combine"
    parts: list[Any] = Field(..., min_length=1, description="feedback blocks, e.g. [verifier, {kind: judge, model: policy}]")
    weights: list[float] | None = Field(None, description="one weight per part (default all 1.0)")

    @field_validator("parts")
    @classmethod
    def _parts(cls, parts: list[Any]) -> list[Any]:
        out = [validate_feedback(p, f"parts.{i}") for i, p in enumerate(parts)]
        names = [p.signal_name() if hasattr(p, "signal_name") else p.kind for p in out]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"two parts are named {dup!r}; give one a name: ...")
        return out

    @model_validator(mode="after")
    def _weights(self) -> "CombineConfig":
        if self.weights is not None and len(self.weights) != len(self.parts):
            raise ValueError(f"weights has {len(self.weights)} entries for {len(self.parts)} parts; give one weight per part")
        return self

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        out = super().model_dump(**kw)
        out["parts"] = [p.model_dump(**kw) for p in self.parts]
        return out


@FEEDBACK.register("combine", CombineConfig)
def combine(samples: list[Sample], cfg: CombineConfig, ctx: Context) -> Rated:
    """Weighted sum of several feedbacks; each part's reward is kept under its name."""
    from sharpen.feedback.score import run_feedback

    scored = verify(samples, ctx.task)
    weights = cfg.weights or [1.0] * len(cfg.parts)
    total = [0.0] * len(samples)
    stats: dict[str, Any] = {}
    for part, w in zip(cfg.parts, weights):
        rated = run_feedback(copy.deepcopy(samples), part, ctx)
        name = part.signal_name() if hasattr(part, "signal_name") else part.kind
        for i, (s, o) in enumerate(zip(scored, rated.scored)):
            s.scores[name] = o.reward
            total[i] += w * o.reward
        if rated.stats:
            stats[name] = rated.stats
    for s, r in zip(scored, total):
        s.reward = r
        s.scores[cfg.signal_name()] = r
    return Rated(scored, stats)
