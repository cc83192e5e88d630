"""The sync check: after every sync, the engine's log-probs of its own samples must match
the trainer's. A stale engine (the peers' most reported bug: rollouts that keep sampling
the initial weights, verl #7495, OpenRLHF #660/#991, TRL #2698) is an error, never a
silently wrong run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from sharpen.errors import UserError
from sharpen.types import Engine, PolicyModel, SamplingParams


@dataclass
class SyncReport:
    """Per-token |engine log-prob - trainer log-prob| over a probe of the engine's samples."""

    max_gap: float
    mean_gap: float
    tokens: int

    def as_dict(self) -> dict[str, float]:
        return {"max_gap": round(self.max_gap, 6), "mean_gap": round(self.mean_gap, 6), "tokens": self.tokens}


def logprob_gap(engine: Engine, policy: PolicyModel, prompts: Sequence[str], params: SamplingParams,
                seeds: Sequence[int]) -> SyncReport:
    """Sample the probe with the engine, score the same tokens with the trainer, compare."""
    groups = engine.generate(prompts, params, seeds)
    prompt_ids, completion_ids, engine_lp = [], [], []
    encoded = policy.encode_prompts(list(prompts))
    for ids, group in zip(encoded, groups):
        for c in group:
            if c.token_ids:
                prompt_ids.append(ids)
                completion_ids.append(list(c.token_ids))
                engine_lp.append(list(c.logprobs))
    if not completion_ids:
        return SyncReport(0.0, 0.0, 0)
    with torch.no_grad():
        lp, mask = policy.token_logprobs(prompt_ids, completion_ids, temperature=params.temperature or 1.0)
    lp, mask = lp.float().cpu(), mask.cpu().bool()
    expected = torch.zeros_like(lp)
    for r, row in enumerate(engine_lp):
        expected[r, :len(row)] = torch.tensor(row, dtype=torch.float32)
    gaps = (lp - expected).abs()[mask]
    return SyncReport(float(gaps.max()), float(gaps.mean()), int(gaps.numel()))


def check_sync(report: SyncReport, tolerance: float, engine: str) -> None:
    """Stop the run when the mean gap exceeds `tolerance`."""
    if report.mean_gap > tolerance:
        raise UserError(
            f"engine {engine}: sync check failed: the engine's log-probs differ from the trainer's by "
            f"{report.mean_gap:.4f} on average (max {report.max_gap:.4f}, {report.tokens} tokens) > "
            f"engine.sync_tolerance={tolerance}; the engine is not sampling the weights just trained")
