"""What the round's own samples say, before training: the exploration side of B-STaR
(how many distinct correct answers the policy still finds) and, for label-free feedback,
how often a rewarded sample is actually correct (reward precision: reward hacking shows
up here first)."""
from __future__ import annotations

from typing import Any

from sharpen.types import Scored, group_by_prompt


def sample_stats(scored: list[Scored], threshold: float = 0.5) -> dict[str, Any]:
    by_prompt = group_by_prompt(scored)
    known = [s for s in scored if s.correct is not None]
    out: dict[str, Any] = {
        "samples": len(scored),
        "prompts": len(by_prompt),
        "reward_mean": sum(s.reward for s in scored) / max(len(scored), 1),
    }
    if known:
        out["correct_rate"] = sum(bool(s.correct) for s in known) / len(known)
        out["pass_at_n"] = sum(any(s.correct for s in g) for g in by_prompt.values()) / len(by_prompt)
        out["distinct_correct_per_prompt"] = sum(
            len({s.sample.text for s in g if s.correct}) for g in by_prompt.values()) / len(by_prompt)
        rewarded = [s for s in known if s.reward > threshold]
        if rewarded:
            out["reward_precision"] = sum(bool(s.correct) for s in rewarded) / len(rewarded)
    return out
