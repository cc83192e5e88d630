import math

import pytest

from sharpen.builders.cream import consistency, cream_pairs, kendall_tau
from sharpen.builders.temporal import anchored_pairs
from sharpen.errors import UserError
from sharpen.types import Completion, Prompt, Sample, Scored


def _group(pid, rows):
    """rows: (text, reward this round, reward by the previous round's judge)."""
    p = Prompt(pid, f"{pid}=")
    return [Scored(Sample(p, Completion(t, [], [], True), i), reward=r, scores={"judge_previous": q})
            for i, (t, r, q) in enumerate(rows)]


def test_kendall_tau_by_hand():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs of (1,2,3) vs (1,3,2): (1,2)+ (1,3)+ (2,3)- -> (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tau-b with a tie in y: x 1,2,3 y 1,1,2: pairs (1,2) tie in y, (1,3)+, (2,3)+ -> 2 / sqrt(3 * 2)
    assert kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1, 1], [1, 2]))


def test_cream_confidence_is_the_rank_agreement():
    agree = _group("a", [("a1", 0.9, 0.8), ("a2", 0.5, 0.4), ("a3", 0.1, 0.2)])       # tau 1 -> C 1
    flip = _group("b", [("b1", 0.9, 0.1), ("b2", 0.5, 0.5), ("b3", 0.1, 0.9)])        # tau -1 -> C 0
    half = _group("c", [("c1", 0.9, 0.9), ("c2", 0.5, 0.1), ("c3", 0.1, 0.5)])        # tau 1/3 -> C 2/3
    assert consistency(agree, "judge_previous") == 1.0 and consistency(flip, "judge_previous") == 0.0
    built = cream_pairs(agree + flip + half, "judge_previous")
    conf = {p.prompt: p.confidence for p in built.data}
    assert conf["a="] == 1.0 and conf["b="] == 0.0 and conf["c="] == pytest.approx(2 / 3)
    assert all(p.chosen.endswith("1") and p.rejected.endswith("3") for p in built.data)  # best vs worst by this round
    assert built.stats["consistency_mean"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    mean = cream_pairs(agree + flip + half, "judge_previous", per="dataset")
    assert all(p.confidence == pytest.approx((1 + 0 + 2 / 3) / 3) for p in mean.data)
    with pytest.raises(UserError, match="consistency_with"):
        cream_pairs(agree, "nope")


def test_anchored_pairs_reject_the_initial_models_worst_sample():
    now = _group("a", [("new good", 0.9, 0), ("new ok", 0.6, 0)])
    anchor = {"a": _group("a", [("old bad", 0.2, 0), ("old worse", 0.1, 0), ("new good", 0.0, 0)])}
    built = anchored_pairs(now, anchor)
    (pair,) = built.data
    # the anchor's own copy of the chosen text is skipped: the rejected side is M0's worst other sample
    assert pair.chosen == "new good" and pair.rejected == "old worse" and pair.margin == pytest.approx(0.8)
    assert anchored_pairs(now, {}).stats["no_anchor"] == 1
