import json

import pytest

from sharpen import api
from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.combine import CombineConfig, combine
from sharpen.feedback.function import FunctionConfig, columns, convention, function, load_function

TRL = "tests/feedback/rewards_trl.py"
VERL = "tests/feedback/rewards_verl.py"


def test_signatures_are_detected():
    assert convention(load_function(f"{TRL}:accuracy_reward")) == "trl"
    assert convention(load_function(f"{VERL}:compute_score")) == "verl"
    with pytest.raises(ValueError, match="neither TRL"):
        convention(load_function(f"{TRL}:not_a_reward"))


def test_trl_function_gets_the_task_columns(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["x|7", "x|5"]), "b": ("4", ["|4"])})
    rated = function(samples, FunctionConfig(fn=f"{TRL}:accuracy_reward"), fake_ctx())
    assert [s.reward for s in rated.scored] == [1.0, 0.0, 1.0]
    assert [s.correct for s in rated.scored] == [True, False, True]  # ground truth kept for the audit
    cols = columns(samples, fake_ctx().task)
    assert cols["answer"] == cols["solution"] == cols["ground_truth"] == ["7", "7", "4"] and cols["prompt_id"] == ["a", "a", "b"]
    none = function(samples, FunctionConfig(fn=f"{TRL}:sometimes_none"), fake_ctx())
    assert [s.reward for s in none.scored] == [1.0, 0.0, 1.0] and none.stats["none"] == 1


def test_verl_function_is_called_per_sample(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["x|7", "x|5"])})
    assert [s.reward for s in function(samples, FunctionConfig(fn=f"{VERL}:compute_score"), fake_ctx()).scored] == [1.0, 0.0]
    assert [s.reward for s in function(samples, FunctionConfig(fn=f"{VERL}:float_score"), fake_ctx()).scored] == [0.5, 0.0]


@pytest.mark.parametrize("fn, message", [
    ("nope", "expected 'module:function'"),
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    (f"{TRL}:missing", "has no function 'missing'"),
    (f"{TRL}:not_a_reward", "neither TRL"),
])
def test_bad_fn_is_a_one_line_recipe_error(fn, message):
    with pytest.raises(UserError) as err:
        load_recipe("grpo", [f"feedback={{kind: function, fn: '{fn}'}}"])
    assert message in str(err.value) and "feedback.fn" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("fn, message", [
    ("short_list", "returned 1 rewards for 2 samples"),
    ("raises", "raised KeyError"),
    ("returns_text", "'good'"),
])
def test_a_failing_function_is_named(fake_ctx, make_samples, fn, message):
    samples = make_samples({"a": ("7", ["x|7", "x|5"])})
    with pytest.raises(UserError) as err:
        function(samples, FunctionConfig(fn=f"{TRL}:{fn}"), fake_ctx())
    assert message in str(err.value) and fn in str(err.value) and "\n" not in str(err.value)


def test_combine_sums_weighted_parts_and_keeps_each(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["x|7", "xx|5"])})
    cfg = CombineConfig(parts=["verifier", {"kind": "function", "fn": f"{TRL}:length_reward", "name": "length"}],
                        weights=[1.0, 2.0])
    rated = combine(samples, cfg, fake_ctx())
    assert [s.reward for s in rated.scored] == pytest.approx([1.0 - 0.06, 0.0 - 0.08])
    assert rated.scored[1].scores["length"] == pytest.approx(-0.04) and rated.scored[0].scores["verifier"] == 1.0
    with pytest.raises(UserError, match="weights has 1 entries for 2 parts"):
        load_recipe("grpo", ["feedback={kind: combine, parts: [verifier, vote], weights: [1]}"])
    with pytest.raises(UserError, match="two parts are named 'vote'"):
        load_recipe("grpo", ["feedback={kind: combine, parts: [vote, vote]}"])
    rec = load_recipe("grpo", ["feedback={kind: combine, parts: [verifier, {kind: vote, n_votes: 8}]}"])
    assert load_recipe(rec.resolved()).feedback.parts[1].n_votes == 8  # config.yaml round-trips


@pytest.mark.parametrize("fn", [f"{TRL}:accuracy_reward", f"{VERL}:compute_score"])
def test_a_trl_and_a_verl_function_drive_a_grpo_run_unchanged(tmp_path, weak_overrides, fn):
    out = api.run("grpo", [*weak_overrides, f"feedback={{kind: function, fn: '{fn}'}}"], out=tmp_path / "run", log=lambda m: None)
    m = api.metrics(out)[1]
    assert m["train"]["steps"] > 0 and "function" in m["audit"]
    rows = [json.loads(line) for line in (out / "rounds/1/samples.jsonl").read_text().splitlines()]
    # the reward is the function's: here it equals exact match of the answer after '|'
    assert all(r["reward"] == float(r["completion"].strip().split("|")[-1] == r["answer"] and r["correct"]) or
               r["reward"] == float(r["correct"]) for r in rows)
    assert any(r["reward"] == 1.0 for r in rows) and any(r["reward"] == 0.0 for r in rows)
