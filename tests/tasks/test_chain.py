"""The multi-step chain task: problems in range, gold passes, every step checked exactly."""
from __future__ import annotations

import random

import pytest

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.tasks import make_task


@pytest.fixture(scope="module")
def task():
    return make_task({"name": "chain", "ops": ["add", "sub", "mul"]})


def test_problems_are_deterministic_in_range_and_gold_passes(task):
    a, b = task.prompts("train", 200), task.prompts("train", 200)
    assert [p.id for p in a] == [p.id for p in b]
    assert {len(p.meta["chain"]) for p in a} == {2, 3, 4, 5, 6}
    assert {op for p in a for op, _ in p.meta["chain"]} == {"add", "sub", "mul"}
    for p in a:
        assert all(0 <= v <= 99 for v in p.meta["values"])
        assert task.score_batch([p], [p.reference]) == [1.0]
        assert task.step_labels(p, p.reference) == [True] * len(p.meta["chain"])
        assert task.local_steps(p, p.reference) == [True] * len(p.meta["chain"])
    assert not {p.id for p in task.prompts("eval", 300)} & {p.id for p in task.prompts("holdout", 300)}


def test_the_reversed_format():
    task = make_task({"name": "chain"})
    p = task.make_problem(47, [("add", 8), ("sub", 5), ("add", 9)])
    assert (p.text, p.reference, p.answer) == ("74a+8b-5c+9=", "a74+8=55\nb55-5=05\nc05+9=95", "95")
    assert task.extract(p.reference) == "95" and task.extract("a74+8=55\nb55-5=05\nc05+9=9") is None
    assert task.extract("") is None and task.extract("95") == "95"
    assert task.score_batch([p] * 3, [p.reference, "a74+8=55\nb55-5=05\nc05+9=96", "c05+9=95"]) == [1.0, 0.0, 1.0]


def test_step_labels_carry_an_error_forward_and_local_steps_do_not():
    task = make_task({"name": "chain"})
    p = task.make_problem(47, [("add", 8), ("sub", 5), ("add", 9)])  # 55, 50, 59
    wrong_first = "a74+8=65\nb65-5=15\nc15+9=06"  # 56 (wrong), 51 = 56 - 5, 60 = 51 + 9: locally right after the slip
    assert task.step_labels(p, wrong_first) == [False, False, False]
    assert task.local_steps(p, wrong_first) == [False, True, True]
    assert task.step_labels(p, p.reference + "\nd05+9=95") == [True, True, True, False]  # a line past the chain
    assert task.step_labels(p, "a74+8=55\nb55-5=xx\nc05+9=95") == [True, False, False]
    assert task.local_steps(p, "a74+8=55\nb55-5=xx\nc05+9=95") == [True, False, False]


def test_plain_format_for_instruct_models():
    task = make_task({"name": "chain", "format": "plain"})
    p = task.make_problem(20, [("add", 8), ("sub", 5), ("mul", 2)])
    assert p.text.startswith("Start with 20. Add 8, then subtract 5, then multiply by 2.")
    assert (p.reference, p.answer) == ("20 + 8 = 28\n28 - 5 = 23\n23 * 2 = 46", "46")
    assert task.score_batch([p] * 4, [p.reference, "28\n23\n46.", "28\n23\n47", "The answer is 46"]) == [1.0, 1.0, 0.0, 0.0]
    assert task.step_labels(p, "28\n24\n46") == [True, False, False]
    with pytest.raises(ValueError, match="leaves"):
        task.make_problem(50, [("mul", 2)])


def test_judge_negatives_are_wrong_and_shaped_like_slips():
    task = make_task({"name": "chain"})
    rng = random.Random(0)
    made = 0
    for p in task.prompts("train", 100):
        neg = task.judge_negative(p, rng)
        if neg is None:
            continue
        made += 1
        labels = task.step_labels(p, neg)
        assert task.score_batch([p], [neg]) == [0.0] and labels[-1] is False and len(labels) == len(p.meta["chain"])
        assert sum(not x for x in task.local_steps(p, neg)) == 1  # one slip, carried on correctly
    assert made >= 80


@pytest.mark.parametrize("override,needle", [("task.steps=[3, 2]", "task.steps"), ("task.ops=[div]", "task.ops"),
                                             ("task.operand_max=100", "operand_max"), ("task.width=9", "task.width")])
def test_bad_knobs_are_one_line(override, needle):
    with pytest.raises(UserError) as err:
        load_recipe("star", ["task.name=chain", override])
    assert needle in str(err.value) and "\n" not in str(err.value)
