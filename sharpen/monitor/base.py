"""What every monitor sees and returns: a view of one round, and stats plus an optional decision.

A monitor runs twice per round: after the builder (`phase == "build"`: the round's scored
samples and the kept data) and after evaluation (`phase == "eval"`: held-out splits,
training stats, and the metrics.json of every earlier round). It returns statistics for
metrics.json and, optionally, a `Decision`: continue, stop, or roll back to round k.
Monitors are pure functions of the view and the run's earlier metrics.json, never of
hidden state, so a resumed run decides exactly what an uninterrupted one did.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from sharpen.types import Built, Engine, Scored, Task

Phase = Literal["build", "eval"]
Action = Literal["continue", "stop", "rollback"]


class MonitorConfig(BaseModel):
    """Knobs every monitor shares; each monitor sets its own `kind`."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="false turns off a monitor of the default set")


@dataclass(frozen=True)
class Decision:
    """What a monitor asks of the loop; `to_round` is the round whose checkpoint the next round starts from."""

    action: Action
    reason: str
    monitor: str = ""
    to_round: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class MonitorResult:
    stats: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None


@dataclass
class RoundView:
    """One round as the monitors see it. `history` holds the metrics.json of rounds 0..r-1;
    `metrics` this round's metrics so far (splits, train, feedback, audit)."""

    round: int
    phase: Phase
    task: Task
    seed: int
    scored: list[Scored] = field(default_factory=list)
    built: Built | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    feedback_kind: str = "verifier"
    engine: Engine | None = None
    progress: Callable[[str, int], Any] | None = None


def history_values(history: list[dict[str, Any]], monitor: str, key: str) -> list[tuple[int, float]]:
    """(round, value) of `metrics["monitors"][monitor][key]` over earlier rounds that have it."""
    out = []
    for m in history:
        v = (m.get("monitors") or {}).get(monitor, {}).get(key)
        if isinstance(v, (int, float)):
            out.append((m["round"], float(v)))
    return out
