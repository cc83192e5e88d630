"""A weighted sum of scorers: `{kind: combine, parts: [verifier, {kind: judge}], weights: [1, 0.5]}`.

Each part's reward is kept in the samples' `scores` under its name, and the loop's audit
audits each part next to the sum, so one can see which part carries the signal.
"""
from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sharpen.feedback.base import FeedbackConfig, validate_feedback
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample


def _name(part: Any) -> str:
    return part.signal_name() if hasattr(part, "signal_name") else str(getattr(part, "kind", "reward"))


class CombineConfig(FeedbackConfig):
    """Reward = sum_i weights[i] * reward of parts[i]."""

    default_threshold: ClassVar[float | None] = None  # a weighted sum is unbounded: audited against its prompt's mean
    kind: Literal["combine"] = "combine"
    parts: list[Any] = Field(..., min_length=1, description="feedback blocks, e.g. [verifier, {kind: judge, model: policy}]")
    weights: list[float] | None = Field(None, description="one weight per part (default: all 1.0)")

    @field_validator("parts")
    @classmethod
    def _parts(cls, parts: list[Any], info: ValidationInfo) -> list[Any]:
        """Each part validated as a feedback block; names must differ, since scores are keyed by them."""
        out = [validate_feedback(p, f"parts.{i}") for i, p in enumerate(parts)]
        seen: dict[str, int] = {info.data.get("name") or "combine": -1}
        for i, part in enumerate(out):
            name = _name(part)
            if name in seen:
                other = "the combine itself" if seen[name] < 0 else f"parts.{seen[name]}"
                raise ValueError(f"parts.{i} and {other} are both named {name!r}; set name: on parts.{i} to tell them apart")
            seen[name] = i
        return out

    @field_validator("weights")
    @classmethod
    def _one_per_part(cls, weights: list[float] | None, info: ValidationInfo) -> list[float] | None:
        parts = info.data.get("parts")
        if weights is not None and parts is not None and len(weights) != len(parts):
            raise ValueError(f"{len(weights)} weights for {len(parts)} parts; give one weight per part")
        return weights

    @model_validator(mode="after")
    def _default_weights(self) -> "CombineConfig":
        if self.weights is None:  # explicit in config.yaml
            self.weights = [1.0] * len(self.parts)
        return self

    def model_dump(self, **kw: Any) -> dict[str, Any]:  # nested part configs dump as mappings (config.yaml reloads)
        out = super().model_dump(**kw)
        out["parts"] = [p.model_dump(**kw) for p in self.parts]
        return out


@FEEDBACK.register("combine", CombineConfig)
def combine(samples: list[Sample], cfg: CombineConfig, ctx: Context) -> Rated:
    """Weighted sum of several feedbacks; each part's reward is kept under its name."""
    from sharpen.feedback.score import run_feedback  # score imports the registry's parts

    scored = verify(samples, ctx.task)
    rated = [run_feedback(copy.deepcopy(samples), part, ctx) for part in cfg.parts]  # a part cannot touch another's samples
    for r in rated:  # each part's other signals (e.g. a vote's label_correct), before the parts' own names
        for s, o in zip(scored, r.scored):
            s.scores.update(o.scores)
    total = [0.0] * len(samples)
    for part, w, r in zip(cfg.parts, cfg.weights or [1.0] * len(cfg.parts), rated):
        for i, (s, o) in enumerate(zip(scored, r.scored)):
            s.scores[_name(part)] = o.reward
            total[i] += w * o.reward
    stats = {_name(part): r.stats for part, r in zip(cfg.parts, rated)}
    return Rated(relabel(scored, total, cfg.signal_name()), stats)
