from math import comb

import pytest

from sharpen.stats import majority_vote, pass_at_k


def test_pass_at_k_matches_definition():
    # 8 samples, 2 correct: pass@1 = 2/8; pass@4 = 1 - C(6,4)/C(8,4)
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - comb(6, 4) / comb(8, 4))
    assert pass_at_k(8, 0, 8) == 0.0
    assert pass_at_k(8, 1, 8) == 1.0


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 8)


def test_majority_vote_ignores_malformed_and_breaks_ties_by_first_seen():
    assert majority_vote(["12", None, "13", "13", None, None]) == "13"
    assert majority_vote(["7", "8", "8", "7"]) == "7"
    assert majority_vote([None, None]) is None
