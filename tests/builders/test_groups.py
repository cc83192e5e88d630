import math

import pytest

from sharpen.builders.groups import GroupsConfig, group_advantages, groups, rl_groups, rloo_advantages


def test_grpo_advantages_by_hand():
    # r = [1, 0, 0, 1]: mean 0.5, Bessel std = sqrt(4 * 0.25 / 3) = 0.5773503, A = +-0.5 / 0.5774503
    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert adv == pytest.approx([0.8658753, -0.8658753, -0.8658753, 0.8658753], abs=1e-6)
    assert group_advantages([1.0, 0.0, 0.0, 1.0], scale="none") == [0.5, -0.5, -0.5, 0.5]


def test_grpo_advantages_match_trl_std_convention():
    import torch
    from trl.trainer.utils import nanstd

    r = [0.3, 1.0, 0.0, 0.7, 0.2]
    t = torch.tensor(r, dtype=torch.float64)
    expected = ((t - t.mean()) / (nanstd(t) + 1e-4)).tolist()
    assert group_advantages(r) == pytest.approx(expected, abs=1e-9)


def test_rloo_advantages_by_hand():
    # r = [1, 0, 0]: A_0 = 1 - (0 + 0)/2 = 1, A_1 = 0 - (1 + 0)/2 = -0.5
    assert rloo_advantages([1.0, 0.0, 0.0]) == [1.0, -0.5, -0.5]
    assert rloo_advantages([0.4]) == [0.0]


def test_groups_builder_drops_and_counts_zero_variance(make_scored):
    batch = [
        make_scored("a", 1, "a1", 0.0, token_ids=[5, 6], logprobs=[-0.5, -0.25]), make_scored("a", 0, "a0", 1.0),
        make_scored("b", 0, "b0", 1.0), make_scored("b", 1, "b1", 1.0),
        make_scored("c", 0, "c0", 0.0), make_scored("c", 1, "c1", 0.0),
        make_scored("d", 0, "d0", 0.0), make_scored("d", 1, "d1", 0.0), make_scored("d", 2, "d2", 1.0),
    ]
    built = groups(batch, GroupsConfig(advantage="dr_grpo"), None)
    assert built.stats == {"groups": 2, "kept": 5, "dropped_zero_variance": 2}
    a, d = built.data
    assert a.completions == ["a0", "a1"] and a.rewards == [1.0, 0.0] and a.advantages == [0.5, -0.5]
    assert a.completion_ids[1] == [5, 6] and a.old_logprobs[1] == [-0.5, -0.25]  # the sampler's pi_old, in order
    assert d.advantages == pytest.approx([-1 / 3, -1 / 3, 2 / 3])
    normed = rl_groups(batch, "grpo").data[1].advantages
    assert sum(normed) == pytest.approx(0.0, abs=1e-9)
    assert math.sqrt(sum(x * x for x in normed) / 2) == pytest.approx(1.0, abs=1e-3)  # unit (Bessel) std
    kept_all = rl_groups(batch, "rloo", drop_zero_variance=False)
    assert kept_all.stats["groups"] == 4 and kept_all.data[1].advantages == [0.0, 0.0]
