import pytest
import torch

from sharpen.errors import UserError
from sharpen.objectives.sft import SFTConfig, sft, sft_loss
from sharpen.types import PreferencePair, SFTExample


def test_sft_loss_is_mean_nll_over_completion_tokens():
    lp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]])  # -9: padding, must be ignored
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sft_loss(lp, mask).item() == pytest.approx((1 + 2 + 0.5) / 3)
    # weights [2, 1]: (2*(1+2) + 0.5) / (2*2 + 1*1) = 6.5 / 5
    assert sft_loss(lp, mask, torch.tensor([2.0, 1.0])).item() == pytest.approx(1.3)


def test_sft_objective_lowers_the_loss_on_a_fixed_batch(tiny_policy, make_ctx):
    data = [SFTExample("12+34=", "46"), SFTExample("5*3=", "51|51"), SFTExample("7-2=", "5"), SFTExample("9+9=", "81")]
    p_ids = [tiny_policy.encode_prompt(e.prompt) for e in data]
    c_ids = [tiny_policy.encode_completion(e.completion) for e in data]
    with torch.no_grad():
        before = sft_loss(*tiny_policy.token_logprobs(p_ids, c_ids)).item()
    stats = sft(tiny_policy, data, SFTConfig(lr=1e-2, epochs=20, batch_size=4), make_ctx(tiny_policy))
    with torch.no_grad():
        after = sft_loss(*tiny_policy.token_logprobs(p_ids, c_ids)).item()
    assert stats["steps"] == 20
    assert after < 0.5 * before, (before, after)


def test_sft_objective_rejects_pairs_with_a_fix(tiny_policy, make_ctx):
    with pytest.raises(UserError, match="build.kind"):
        sft(tiny_policy, [PreferencePair("1=", "1", "2")], SFTConfig(), make_ctx(tiny_policy))
