"""Self-Harmony's harmonic-mean label, on hand-built views and samples."""
import dataclasses

import pytest

from sharpen.feedback.harmony import HarmonyConfig, harmonic_label, harmony
from sharpen.types import Completion, SamplingParams

from tests.feedback.conftest import FakeTask


def test_a_view_dependent_majority_loses_to_the_answer_every_view_gives():
    # 5 wins the first view 3 to 1 but the reframing never says it; 7 appears in both
    label, score = harmonic_label([["5", "5", "5", "7"], ["7", "7", "9", "9"]])
    assert label == "7" and score == pytest.approx(2 / (1 / 0.25 + 1 / 0.5))


def test_smoothing_turns_a_veto_into_a_penalty_by_hand():
    views = [["a", "a", "b"], ["b", "c", "c"]]
    assert harmonic_label(views) == ("b", pytest.approx(1 / 3))  # a and c are each missing from one view
    label, score = harmonic_label(views, smoothing=0.5)
    assert label == "b" and score == pytest.approx(1.5 / 3.5)
    # with smoothing a one-view answer scores above 0, and a stronger one-view answer can win
    label, score = harmonic_label([["a"] * 8, ["b"] * 7 + ["a"]], smoothing=0.5)
    a = 2 / (8.5 / 8.5 + 8.5 / 1.5)
    b = 2 / (8.5 / 0.5 + 8.5 / 7.5)
    assert label == "a" and score == pytest.approx(max(a, b))


def test_ties_are_broken_by_pooled_count_then_first_seen_and_malformed_never_wins():
    assert harmonic_label([["x", "y"], ["y", "x"]])[0] == "x"  # same score, same pooled count: first seen
    assert harmonic_label([["y", "x", "x"], ["x", "y", "y"], ["x", "y"]])[0] == "y"  # mirrored views: y came first
    assert harmonic_label([[None, None], [None]]) == (None, 0.0)
    assert harmonic_label([["1"], ["2"]]) == (None, 0.0)  # nothing common to both views and no smoothing


class ReframingTask(FakeTask):
    """'a' has reframings a1, a2; 'b' has none (keeps its own majority)."""

    def paraphrases(self, prompt, k):
        return [dataclasses.replace(prompt, id=f"a{i}", text=f"a{i}=") for i in (1, 2)][:k] if prompt.id == "a" else []


class Engine:
    def __init__(self, answers):
        self.answers, self.params = answers, []

    def generate(self, prompts, params, seeds, progress=None):
        self.params.append(params)
        return [[Completion(f"|{x}", [], [], True) for x in self.answers[p]][: params.n] for p in prompts]


def test_rollouts_are_rewarded_for_the_label_stable_across_reframings(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["|5", "|5", "|7"]), "b": ("4", ["|4", "|4", "|3"])})
    ctx = fake_ctx()
    ctx.task = ReframingTask()
    ctx.engine = Engine({"a1=": ["7", "7", "9"], "a2=": ["9", "7", "5"]})
    ctx.sampling = SamplingParams(n=3, temperature=0.8)
    rated = harmony(samples, HarmonyConfig(n_views=2, temperature=0.6), ctx)
    # a: 5 holds 2/3 of its own votes but none of a1's; 7 is in every view -> label 7 (right)
    assert [s.reward for s in rated.scored] == [0, 0, 1, 1, 1, 0]
    (params,) = ctx.engine.params
    assert params.n == 3 and params.temperature == 0.6
    st = rated.stats
    assert st["label_accuracy"] == 1.0 and st["majority_kept"] == 0.0 and st["paraphrased"] == 0.5
    assert st["views"] == 3.0
    # one reframing only: a1 alone, where 7 is the only answer both views share
    rated = harmony(samples, HarmonyConfig(n_views=1), ctx)
    assert [s.reward for s in rated.scored][:3] == [0, 0, 1]


def test_a_task_without_reframings_is_a_clear_error(fake_ctx, make_samples):
    ctx = fake_ctx()
    with pytest.raises(ValueError, match="feedback harmony"):
        harmony(make_samples({"b": ("4", ["|4"])}), HarmonyConfig(), ctx)
