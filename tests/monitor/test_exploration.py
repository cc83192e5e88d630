import math

import pytest

from sharpen.monitor.exploration import distinct_n, entropy, exploration_stats
from tests.monitor.helpers import scored


def test_distinct_n_and_entropy_by_hand():
    assert distinct_n([[1, 2, 1, 2]], 1) == 0.5  # {1, 2} of 4 unigrams
    assert distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)  # (1,2),(2,1),(1,2)
    assert distinct_n([[1]], 2) is None
    assert entropy(["a", "a", "b", "b"]) == pytest.approx(math.log(2))
    assert entropy(["a"] * 3) == 0.0


def test_exploration_stats_on_two_prompts():
    # prompt 1: 4 samples, 2 correct with distinct texts, answers {7, 7, 8, None}
    # prompt 2: 4 samples, none correct, one answer repeated
    rows = [scored("1", "7a", True, answer="7", tokens=[1, 2]), scored("1", "7b", True, answer="7", tokens=[1, 3]),
            scored("1", "8", False, answer="8", tokens=[4]), scored("1", "x", False, answer=None, tokens=[5]),
            *[scored("2", "5", False, answer="5", tokens=[6]) for _ in range(4)]]
    s = exploration_stats(rows, k=2)
    assert s["prompts"] == 2 and s["k"] == 2
    # pass@2 of prompt 1: 1 - C(2,2)/C(4,2) = 5/6; prompt 2: 0
    assert s["pass_at_k"] == pytest.approx(5 / 12)
    assert s["distinct_correct_per_prompt"] == 1.0  # (2 + 0) / 2
    assert s["distinct_answers_per_prompt"] == 1.5  # {7, 8} and {5}
    h1 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # 7: 1/2, 8: 1/4, None: 1/4
    assert s["answer_entropy"] == pytest.approx(h1 / 2)
    assert s["distinct_1"] == pytest.approx((5 / 6 + 1 / 4) / 2)  # prompt 1: 5 unique of 6 tokens; prompt 2: 1 of 4
    assert s["prompts_solved"] == 0.5 and s["token_nll"] == pytest.approx(0.5)
    assert exploration_stats(rows, k=2, probe=1)["pass_at_k"] == pytest.approx(5 / 6)  # the first prompt only


def test_no_ground_truth_no_pass_at_k():
    s = exploration_stats([scored("1", "a", None), scored("1", "b", None)])
    assert "pass_at_k" not in s and s["distinct_answers_per_prompt"] == 2
