"""The body of one Ray actor (`executor: ray`): an hf engine on its own copy of the policy,
refreshed from the driver's weights each round, and the task's scorer.

It imports no Ray at module level: `ray_executor` wraps the class with `ray.remote`.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from sharpen.types import Completion, Prompt, SamplingParams


class Replica:
    """Loads lazily: an actor that only scores never loads a model."""

    def __init__(self, policy_spec: dict[str, Any] | None, task_cfg: Any, threads: int, batch_size: int) -> None:
        # the driver's thread count: float reductions split the same way, so the same bits
        torch.set_num_threads(threads)
        self.policy_spec = policy_spec
        self.task_cfg = task_cfg
        self.batch_size = batch_size
        self.policy: Any = None
        self.engine: Any = None
        self.task: Any = None
        self.version: int | None = None

    def pid(self) -> int:
        return os.getpid()

    def sandbox_missing(self) -> list[str]:
        """The sandbox protections this worker's kernel refuses (empty: the full sandbox runs here)."""
        from sharpen.sandbox import missing_features

        return list(missing_features())

    def _load(self, weights: list[Any], version: int) -> None:
        """The driver's merged weights of `version` (an object-store ref, fetched only when stale)."""
        if self.version == version:
            return
        import ray

        from sharpen.engines import HFEngine
        from sharpen.policy import Policy

        if self.policy is None:
            if self.policy_spec is None:
                raise RuntimeError("this replica was started to score only (no policy)")
            self.policy = Policy.load(**self.policy_spec)
            self.engine = HFEngine(self.policy, batch_size=self.batch_size)
        state = ray.get(weights[0])
        with torch.no_grad():
            self.policy.model.load_state_dict(state)
        self.policy.stepped()
        self.engine.sync(self.policy)
        self.version = version

    def generate(self, weights: list[Any], version: int, prompts: Sequence[str], params: SamplingParams,
                 seeds: Sequence[int]) -> list[list[Completion]]:
        """One shard of the driver's `generate`: one batch exactly as the local engine forms it."""
        self._load(weights, version)
        return self.engine.generate(prompts, params, seeds)

    def score_batch(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        """One shard of the task's `score_batch` (code runs in this node's sandbox)."""
        if self.task is None:
            from sharpen.tasks import make_task

            self.task = make_task(self.task_cfg)
        return self.task.score_batch(prompts, completions)
