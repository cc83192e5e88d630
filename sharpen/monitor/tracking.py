"""Experiment tracking: `tracking: tensorboard` writes every numeric metric of every round
and the trainer's per-step loss, lr and grad norm as TensorBoard event files in <run>/tb/.

Round scalars are tagged by their path in metrics.json (`splits/eval/greedy_accuracy`,
`monitors/exploration/pass_at_k`) at step = round; training steps as `step/<stat>` at a
global step counted over every earlier round's `train.steps`, so a resumed run continues
the same curve.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator


def numeric_leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(slash/joined/path, value) of every finite int/float in nested dicts (lists skipped)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numeric_leaves(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
        yield prefix, float(obj)


class Tracker:
    """No tracking (the default): every call is a no-op."""

    def round(self, metrics: dict[str, Any]) -> None: ...

    def step_logger(self, first_step: int) -> Callable[[dict[str, float]], None] | None:
        return None

    def close(self) -> None: ...


class TensorBoardTracker(Tracker):
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def round(self, metrics: dict[str, Any]) -> None:
        r = int(metrics["round"])
        for tag, value in numeric_leaves({k: v for k, v in metrics.items() if k != "round"}):
            self.writer.add_scalar(tag, value, r)
        self.writer.flush()

    def step_logger(self, first_step: int) -> Callable[[dict[str, float]], None]:
        count = [first_step]

        def log(stats: dict[str, float]) -> None:
            for k, v in stats.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.writer.add_scalar(f"step/{k}", float(v), count[0])
            count[0] += 1

        return log

    def close(self) -> None:
        self.writer.close()


def make_tracker(kind: str, run_dir: Path) -> Tracker:
    return TensorBoardTracker(Path(run_dir) / "tb") if kind == "tensorboard" else Tracker()


def steps_before(history: list[dict[str, Any]]) -> int:
    """Optimizer steps of every earlier round: the first global step of this round."""
    return sum(int((m.get("train") or {}).get("steps", 0) or 0) for m in history)
