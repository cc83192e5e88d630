import pytest

from sharpen.monitor.adaptive import AdaptConfig, best, choose_knobs, grid_scores
from sharpen.types import Completion, Prompt, SamplingParams, Scored
from tests.monitor.helpers import scored


def test_grid_picks_the_highest_balance_score_first_in_grid_order_on_ties():
    low = [scored("1", "a", True, reward=1.0), scored("1", "a", True, reward=1.0), scored("1", "b", False, reward=0.2)]
    high = [scored("1", "a", True, reward=1.0), scored("1", "c", True, reward=0.9), scored("1", "b", False, reward=0.2)]
    grid = grid_scores({0.5: low, 1.0: high}, [0.1, 0.95], n_star=2)
    by = {(g["temperature"], g["threshold"]): g["balance_score"] for g in grid}
    assert by[(0.5, 0.95)] == pytest.approx(0.5 * 1 / 2)  # 1 distinct correct of 2 selected
    assert by[(1.0, 0.1)] == pytest.approx(1.0 * 2 / 3)  # a, c correct, b wrong selected
    assert by[(1.0, 0.95)] == pytest.approx(0.5 * 1.0)  # only a selected
    assert best(grid)["temperature"] == 1.0 and best(grid)["threshold"] == 0.1
    tie = [{"temperature": t, "threshold": 1.0, "balance_score": 0.5} for t in (0.7, 0.9)]
    assert best(tie)["temperature"] == 0.7


def test_choose_knobs_samples_each_temperature_with_seeded_draws():
    prompts = [Prompt("1", "q1"), Prompt("2", "q2")]
    calls = []

    def generate(texts, params, seeds):
        calls.append((params.temperature, tuple(seeds)))
        # hotter sampling gives more distinct right answers
        return [[Completion(f"{t}{i if params.temperature > 0.6 else 0}", [], [], True) for i in range(params.n)] for t in texts]

    def score(samples):
        return [Scored(s, 1.0, True, s.text) for s in samples]

    cfg = AdaptConfig(temperatures=[0.5, 0.9], thresholds=[1.0], probe=2, n_star=4)
    out = choose_knobs(cfg, prompts, SamplingParams(n=4), seed=0, r=1, generate=generate, score=score)
    assert out["temperature"] == 0.9 and out["threshold"] == 1.0 and out["balance_score"] == 1.0
    assert [c[0] for c in calls] == [0.5, 0.9] and calls[0][1] != calls[1][1]
    first = [c[1] for c in calls]
    again = []
    choose_knobs(cfg, prompts, SamplingParams(n=4), seed=0, r=1, generate=lambda *a: (again.append(a[2]), generate(*a))[1], score=score)
    assert [tuple(s) for s in again] == first  # the same seeds in another process
