"""Engine hf: per-prompt seeds make samples independent of batch composition, and the
engine samples its own copy of the weights, current only after `sync`."""
from __future__ import annotations

import torch

from sharpen.engines import HFEngine
from sharpen.types import Engine, SamplingParams
from tests.conftest import small_tiny_policy

PROMPTS = ["12+34=", "7*8=", "x", "0+0=", "999+1="]
PARAMS = SamplingParams(n=3, temperature=1.0, max_new_tokens=10)


def _ids(groups):
    return [[c.token_ids for c in g] for g in groups]


def test_it_is_an_engine():
    assert isinstance(HFEngine(small_tiny_policy()), Engine)


def test_a_prompts_samples_depend_on_its_seed_alone():
    policy = small_tiny_policy(0)
    engine = HFEngine(policy, batch_size=2)
    seeds = [11, 22, 33, 44, 55]
    together = _ids(engine.generate(PROMPTS, PARAMS, seeds))
    alone = [_ids(engine.generate([p], PARAMS, [s]))[0] for p, s in zip(PROMPTS, seeds)]
    shuffled = _ids(HFEngine(policy, batch_size=64).generate(PROMPTS[::-1], PARAMS, seeds[::-1]))[::-1]
    assert together == alone == shuffled
    assert _ids(engine.generate(PROMPTS, PARAMS, [s + 1 for s in seeds])) != together
    assert len({tuple(map(tuple, g)) for g in together}) > 1 and all(len(set(map(tuple, g))) > 1 for g in together[:2])


def test_the_engine_is_stale_until_synced():
    policy = small_tiny_policy(0)
    engine = HFEngine(policy)
    engine.sync(policy)
    before = _ids(engine.generate(PROMPTS, PARAMS, [1, 2, 3, 4, 5]))
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.5)
    policy.stepped()
    assert _ids(engine.generate(PROMPTS, PARAMS, [1, 2, 3, 4, 5])) == before  # still the old weights
    engine.sync(policy)
    assert _ids(engine.generate(PROMPTS, PARAMS, [1, 2, 3, 4, 5])) != before
