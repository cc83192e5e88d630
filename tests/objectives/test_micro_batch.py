"""Micro-batching accumulates gradients: the same loss and gradients as the full batch."""
from __future__ import annotations

import pytest
import torch

from sharpen.objectives.trainer import fit
from sharpen.objectives.sft import sft
from sharpen.objectives.dpo import DPOConfig, dpo
from sharpen.objectives.grpo import GRPOConfig, grpo
from sharpen.objectives.sft import SFTConfig
from sharpen.types import PreferencePair, RLGroup, SFTExample

EXAMPLES = [SFTExample("12+3", "51", 1.0), SFTExample("4*4", "61|61", 0.5), SFTExample("7+7", "41", 2.0),
            SFTExample("0+1", "1", 1.0), SFTExample("99+1", "001|001", 1.0)]


def _grads_after_one_step(policy, run) -> tuple[dict[str, float], list[torch.Tensor]]:
    """Run one optimizer step with lr 0 and a spy on the step: the gradients it saw."""
    seen: list[list[torch.Tensor]] = []
    real = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append([p.grad.detach().clone() for g in self.param_groups for p in g["params"] if p.grad is not None])
        return real(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        stats = run()
    finally:
        torch.optim.AdamW.step = real
    return stats, seen[0]


@pytest.mark.parametrize("objective", ["sft", "dpo", "grpo"])
def test_micro_batches_give_the_full_batch_loss_and_gradients(tiny_policy, make_ctx, objective):
    ctx = make_ctx(tiny_policy)
    if objective == "sft":
        data, fn, cfg = EXAMPLES, sft, lambda **k: SFTConfig(lr=1e-12, batch_size=5, grad_clip=None, **k)
    elif objective == "dpo":
        data = [PreferencePair(e.prompt, e.completion, "9", 1.0) for e in EXAMPLES]
        fn, cfg = dpo, lambda **k: DPOConfig(lr=1e-12, batch_size=5, grad_clip=None, rpo_alpha=None, **k)
    else:
        ids = [[tiny_policy.encode_completion(c) for c in ("51", "5", "511")], [tiny_policy.encode_completion(c) for c in ("6", "61")]]
        data = [RLGroup("12+3", ["51", "5", "511"], [1, 0, 1], [0.6, -1.2, 0.6], [[-0.5] * len(i) for i in ids[0]], ids[0]),
                RLGroup("4*4", ["6", "61"], [0, 1], [-1.0, 1.0], [[-0.7] * len(i) for i in ids[1]], ids[1])]
        fn, cfg = grpo, lambda **k: GRPOConfig(lr=1e-12, batch_size=2, grad_clip=None, beta=0.04, **k)
    full_stats, full = _grads_after_one_step(tiny_policy, lambda: fn(tiny_policy, data, cfg(max_steps=1), ctx))
    micro_stats, micro = _grads_after_one_step(tiny_policy, lambda: fn(tiny_policy, data, cfg(max_steps=1, micro_batch_size=2), ctx))
    assert micro_stats["loss"] == pytest.approx(full_stats["loss"], rel=1e-5, abs=1e-7)
    assert len(full) == len(micro) > 0
    for a, b in zip(full, micro):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (a - b).abs().max()


def test_micro_batch_of_one_equals_no_micro_batching(tiny_policy):
    def loss_fn(batch):
        lp, mask = tiny_policy.token_logprobs([[1, 3]] * len(batch), [[4 + b, 2] for b in batch])
        return -(lp * mask).sum() / mask.sum(), {}, float(mask.sum())

    start = {k: v.clone() for k, v in tiny_policy.model.state_dict().items()}
    out = []
    for micro in (None, 1):
        tiny_policy.model.load_state_dict(start)
        fit(tiny_policy, list(range(6)), loss_fn, lr=1e-2, epochs=1, batch_size=6, micro_batch_size=micro,
            generator=torch.Generator().manual_seed(0))
        out.append(tiny_policy.model.state_dict()["lm_head.weight"].clone())
    assert torch.allclose(out[0], out[1], atol=1e-6)
