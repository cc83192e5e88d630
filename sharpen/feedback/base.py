"""What every feedback's config declares: the signals audited next to it, and its threshold.

`audit: [...]` lists more scorers to run on the same samples each round, for the signal
audit only (they never change the training reward): a TTRL run can watch what a judge or
self-certainty would have said. `threshold` is where the audit splits a signal into
"rewarded" and "not" for precision and recall.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sharpen.registry import FEEDBACK


def validate_feedback(value: Any, where: str) -> BaseModel:
    """A nested feedback block (`{kind: judge, ...}` or just `judge`) -> its validated config.
    Raises ValueError naming the nested field, so the recipe error points at it."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict) or "kind" not in value:
        raise ValueError(f"{where}: expected a feedback block with kind: (got {value!r})")
    try:
        entry = FEEDBACK.get(str(value["kind"]))
    except KeyError:
        raise ValueError(f"{where}.kind: unknown feedback {value['kind']!r}; one of {', '.join(FEEDBACK.names())}") from None
    try:
        return entry.config.model_validate(value)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        raise ValueError(f"{where}.{loc}: {e['msg']}") from None


class FeedbackConfig(BaseModel):
    """A feedback's knobs. `default_threshold` None means "above its prompt's mean", which is
    what a group-relative advantage promotes (for unbounded signals: certainty, likelihood)."""

    model_config = ConfigDict(extra="forbid")
    default_threshold: ClassVar[float | None] = 0.5

    name: str | None = Field(None, description="this signal's name in samples.jsonl scores and the audit (default: its kind)")
    threshold: float | None = Field(None, description="audit: a sample counts as rewarded when its reward > threshold "
                                                      "(default: 0.5 for 0/1 and probability signals, else its prompt's mean)")
    audit: list[Any] = Field(default_factory=list, description="more scorers run on the same samples only to audit them, e.g. [judge, self_certainty]")

    @field_validator("audit")
    @classmethod
    def _audit_parts(cls, parts: list[Any]) -> list[Any]:
        return [validate_feedback(p, f"audit.{i}") for i, p in enumerate(parts)]

    def signal_name(self) -> str:
        return self.name or str(getattr(self, "kind", "reward"))

    def audit_threshold(self) -> float | None:
        return self.threshold if self.threshold is not None else self.default_threshold

    def model_dump(self, **kw: Any) -> dict[str, Any]:  # nested audit configs dump as mappings
        out = super().model_dump(**kw)
        out["audit"] = [p.model_dump(**kw) if isinstance(p, BaseModel) else p for p in self.audit]
        return out
