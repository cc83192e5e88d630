"""Training side of a round: loss, KL to the reference where the objective
reports one, and the length of the policy's responses (length drift is the first sign of
a length-gamed reward)."""
from __future__ import annotations

from typing import Literal

from sharpen.monitor.base import MonitorConfig, MonitorResult, RoundView
from sharpen.registry import MONITORS
from sharpen.types import Scored


def response_stats(scored: list[Scored]) -> dict[str, float]:
    """Mean completion length in tokens and characters, and the share that ended (eos)."""
    if not scored:
        return {}
    cs = [s.sample.completion for s in scored]
    return {"response_tokens": sum(len(c.token_ids) for c in cs) / len(cs),
            "response_chars": sum(len(c.text) for c in cs) / len(cs),
            "finished_rate": sum(c.finished for c in cs) / len(cs)}


class TrainingConfig(MonitorConfig):
    """Training loss, KL to the reference (when the objective reports it) and mean response length."""

    kind: Literal["training"] = "training"


@MONITORS.register("training", TrainingConfig)
def training(view: RoundView, cfg: TrainingConfig) -> MonitorResult | None:
    """Loss, grad norm, KL to the reference and response length of the round."""
    if view.phase == "build":
        return MonitorResult(response_stats(view.scored)) if view.scored else None
    train = view.metrics.get("train") or {}
    stats = {k: train[k] for k in ("loss", "grad_norm", "kl", "steps") if isinstance(train.get(k), (int, float))}
    return MonitorResult(stats) if stats else None
