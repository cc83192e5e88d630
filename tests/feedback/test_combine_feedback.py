"""`feedback: {kind: combine}`: a weighted sum of parts, each part kept and audited under its name."""
from __future__ import annotations

import sys
import types

import pytest

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.combine import CombineConfig, combine
from sharpen.feedback.score import score_round

MOD = "combine_rewards_for_test"


@pytest.fixture(autouse=True)
def length_module(monkeypatch):
    """A TRL-style `length` reward: -len/100 per completion, with a log_metric."""
    module = types.ModuleType(MOD)

    def length(completions, log_metric=None, **kwargs):
        log_metric("calls", 1.0)
        return [-len(c) / 100 for c in completions]

    module.length = length
    monkeypatch.setitem(sys.modules, MOD, module)


LENGTH = {"kind": "function", "fn": f"{MOD}:length", "name": "length"}


def test_reward_is_the_weighted_sum_and_each_part_is_kept(make_samples, fake_ctx):
    samples = make_samples({"a": ("7", ["x|7", "xx|5", "7h", "y|5"]), "b": ("4", ["|4", "|4", "4"])})
    cfg = CombineConfig(parts=["verifier", LENGTH, "vote"], weights=[1.0, 2.0, 0.5])
    rated = combine(samples, cfg, fake_ctx())
    verifier = [1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 1.0]  # "7h": half credit
    length = [-0.03, -0.04, -0.02, -0.03, -0.02, -0.02, -0.01]
    vote = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # a's majority is the wrong 5
    want = [v + 2 * n + 0.5 * o for v, n, o in zip(verifier, length, vote)]
    assert [s.reward for s in rated.scored] == pytest.approx(want)
    assert [s.scores["combine"] for s in rated.scored] == pytest.approx(want)
    assert [s.scores["length"] for s in rated.scored] == pytest.approx(length)
    assert [s.scores["verifier"] for s in rated.scored] == verifier
    assert [s.scores["vote"] for s in rated.scored] == vote
    assert "label_correct" in rated.scored[0].scores  # a part's own extra signals are kept
    assert [s.correct for s in rated.scored] == [True, False, False, False, True, True, True]
    assert rated.stats["length"]["calls"] == 1.0 and set(rated.stats) == {"verifier", "length", "vote"}


def test_weights_default_to_one_and_are_explicit_in_the_config(make_samples, fake_ctx):
    cfg = CombineConfig(parts=["verifier", LENGTH])
    assert cfg.weights == [1.0, 1.0]
    rated = combine(make_samples({"a": ("7", ["x|7"])}), cfg, fake_ctx())
    assert rated.scored[0].reward == pytest.approx(1.0 - 0.03)


def test_the_loop_audits_each_part(make_samples, fake_ctx):
    samples = make_samples({"a": ("7", ["x|7", "xx|5", "7", "|1"])})
    _, stats, audit = score_round(samples, CombineConfig(parts=["verifier", LENGTH], weights=[1.0, 1.0]), fake_ctx())
    assert set(audit) == {"combine", "verifier", "length"}
    assert audit["verifier"]["precision"] == 1.0 and stats["length"]["convention"] == "trl"


def test_config_yaml_round_trips_nested_parts():
    part = f"{{kind: function, fn: '{MOD}:length', name: length}}"
    rec = load_recipe("grpo", [f"feedback={{kind: combine, parts: [verifier, {part}], weights: [1, 0.5], audit: [vote]}}"])
    again = load_recipe(rec.resolved()).feedback
    assert again == rec.feedback and again.parts[1].fn == f"{MOD}:length" and again.weights == [1.0, 0.5]
    assert rec.resolved()["feedback"]["parts"][1]["name"] == "length"


@pytest.mark.parametrize("feedback, needles", [
    ("{kind: combine, parts: [verifier, vote], weights: [1]}", ["feedback.weights", "1 weights for 2 parts"]),
    ("{kind: combine, parts: [vote, vote]}", ["feedback.parts", "both named 'vote'", "set name:"]),
    ("{kind: combine, parts: [verifier, {kind: vote, name: combine}]}", ["both named 'combine'"]),
    ("{kind: combine, parts: []}", ["feedback.parts"]),
    ("{kind: combine, parts: [verifier, {kind: chess}]}", ["parts.1.kind", "unknown feedback 'chess'"]),
    ("{kind: combine, parts: [verifier, {kind: function, fn: 'nope.py:f'}]}", ["parts.1.fn", "no such file"]),
])
def test_a_bad_combine_is_a_one_line_recipe_error(feedback, needles):
    with pytest.raises(UserError) as err:
        load_recipe("grpo", [f"feedback={feedback}"])
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg
