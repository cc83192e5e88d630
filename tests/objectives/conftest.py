"""Fixtures for objective tests: the real built-in Policy, shrunk to one small layer so
twenty optimizer steps take well under a second, and a Context with frozen references."""
from __future__ import annotations

from typing import Any

import pytest

from sharpen.policy import new_tiny_policy
from sharpen.progress import RichProgress
from sharpen.types import Context


@pytest.fixture
def tiny_policy() -> Any:
    return new_tiny_policy(0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=2)


@pytest.fixture
def make_ctx():
    def make(policy: Any, refs: dict[str, Any] | None = None, round: int = 1) -> Context:
        refs = refs or {"base": policy.copy(), "last": policy.copy()}
        return Context(task=None, policy=policy, round=round, seed=0, reference=refs.__getitem__,
                       progress=RichProgress(enabled=False))
    return make
