"""The sync check: the engine's log-probs of its own samples match the trainer's after a
sync, and a run whose engine skips the weight sync stops with the gap in the error."""
from __future__ import annotations

import pytest
import torch

from sharpen import api
from sharpen.engines import HFEngine, check_sync, logprob_gap
from sharpen.errors import UserError
from sharpen.types import SamplingParams
from tests.conftest import small_tiny_policy

PARAMS = SamplingParams(n=1, temperature=0.8, max_new_tokens=12)


def test_gap_is_zero_after_sync_and_large_when_stale():
    policy = small_tiny_policy(0)
    engine = HFEngine(policy)
    engine.sync(policy)
    fresh = logprob_gap(engine, policy, ["12+3=", "4*4=", "x"], PARAMS, [1, 2, 3])
    assert fresh.tokens > 10 and fresh.max_gap < 1e-4
    check_sync(fresh, 1e-3, "hf")
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.3)
    policy.stepped()
    stale = logprob_gap(engine, policy, ["12+3=", "4*4=", "x"], PARAMS, [1, 2, 3])
    assert stale.mean_gap > 0.05
    with pytest.raises(UserError, match=r"sync check failed: .* differ .* by \d+\.\d+ on average"):
        check_sync(stale, 1e-3, "hf")


def test_every_round_records_the_gap(tmp_path, weak_overrides):
    out = api.run("star", [*weak_overrides, "rounds=2"], out=tmp_path / "run", log=lambda m: None)
    for m in api.metrics(out):
        assert m["sync"]["engine"] == "hf" and m["sync"]["tokens"] > 0
        assert m["sync"]["max_gap"] < m["sync"]["tolerance"] == 1e-3


def test_a_run_whose_engine_skips_the_sync_fails_with_the_gap(tmp_path, weak_overrides, monkeypatch):
    real = HFEngine.sync

    def sync_once(self, policy):  # the bug class: the engine loads weights once, then never again
        if self.model is None:
            real(self, policy)

    monkeypatch.setattr(HFEngine, "sync", sync_once)
    with pytest.raises(UserError) as info:
        api.run("star", weak_overrides, out=tmp_path / "run", log=lambda m: None)
    assert "engine hf: sync check failed" in str(info.value) and "engine.sync_tolerance" in str(info.value)
    assert not (tmp_path / "run" / "rounds" / "1").exists()  # the stale round is not recorded
