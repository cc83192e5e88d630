"""word_problems: registration, splits, extraction, gold completions, config errors (no model)."""
from __future__ import annotations

import pytest

from sharpen.errors import UserError
from sharpen.registry import TASKS
from sharpen.tasks import make_task
from sharpen.tasks.word_problems import WordProblemsConfig, WordProblemsTask, parse_answer
from sharpen.types import SPLITS, Prompt, Task

ALL = ["add", "sub", "mul", "div"]


def task(**kw) -> WordProblemsTask:
    return make_task({"name": "word_problems", **kw})


def test_is_a_registered_task_and_defaults_build():
    t = task()
    assert isinstance(t, Task)
    assert TASKS.get("word_problems").config is WordProblemsConfig
    assert make_task(WordProblemsConfig(seed=3)).seed == 3
    assert len({p.text for p in t.prompts("eval", 500)}) == 500  # the default has room for eval.n 500
    p = t.prompts("eval", 1)[0]
    assert p.text.endswith("End your reply with 'Answer: <number>'.")
    assert p.reference.endswith(f"\nAnswer: {p.answer}")


@pytest.mark.parametrize("split_by", ["numbers", "text"])
def test_splits_are_disjoint_and_deterministic(split_by):
    t = task(ops=ALL, steps=[1, 2], numbers=[1, 60], split_by=split_by)
    got = {s: t.prompts(s, 150) for s in SPLITS}
    keys = {s: {t.canonical(p) for p in ps} for s, ps in got.items()}
    assert not keys["train"] & keys["eval"] and not keys["train"] & keys["holdout"] and not keys["eval"] & keys["holdout"]
    assert len(keys["eval"]) == 150 and len(keys["holdout"]) == 150  # held-out problems are distinct
    again = task(ops=ALL, steps=[1, 2], numbers=[1, 60], split_by=split_by)
    assert [p.text for p in again.prompts("eval", 150)] == [p.text for p in got["eval"]]
    assert [p.text for p in again.prompts("train", 50, round=2)] == [p.text for p in t.prompts("train", 50, round=2)]
    assert [p.text for p in t.prompts("train", 50, round=1)] != [p.text for p in t.prompts("train", 50, round=2)]
    assert [p.text for p in t.prompts("eval", 20, round=5)] == [p.text for p in got["eval"][:20]]
    assert [p.text for p in task(seed=1).prompts("eval", 20)] != [p.text for p in task(seed=0).prompts("eval", 20)]


def test_split_by_numbers_keeps_every_sum_in_one_split():
    t = task(ops=["add"], numbers=[1, 30], split_by="numbers")
    eval_sums = {t.canonical(p) for p in t.prompts("eval", 40)}
    train = t.prompts("train", 2000)
    assert not eval_sums & {t.canonical(p) for p in train}
    a, b = train[0].meta["numbers"]
    swapped = Prompt(id="x", text="other words", meta={"op": "add", "numbers": [b, a]})
    assert t.canonical(swapped) == t.canonical(train[0])  # 8 + 6 and 6 + 8 share a split


def test_small_space_under_split_by_numbers_is_a_user_error():
    with pytest.raises(UserError, match=r"only \d+ distinct 'eval'.*task"):
        task(ops=["add"], numbers=[1, 5], split_by="numbers").prompts("eval", 100)
    assert len(task(ops=["add"], numbers=[1, 5], split_by="text").prompts("eval", 100)) == 100


@pytest.mark.parametrize("cfg", [
    {}, {"ops": ALL}, {"ops": ["mul", "div"]}, {"ops": ALL, "steps": [1, 3], "numbers": [1, 20]},
    {"ops": ["sub"], "steps": [2, 4], "numbers": [5, 9]}, {"ops": ["add"], "numbers": [100, 999], "split_by": "text"},
])
def test_reference_completions_are_true_and_score_one(cfg):
    t = task(**cfg)
    prompts = t.prompts("train", 300)
    assert t.score_batch(prompts, [p.reference for p in prompts]) == [1.0] * 300
    for p in prompts:
        assert int(p.answer) >= 0
        ops = p.meta["op"].split("+")
        assert len(ops) == p.meta["steps"] and ops[0] in t.cfg.ops and all(o in ("add", "sub") for o in ops[1:])
        # the gold completion's equations are true and chain into the answer
        last = None
        for eq in p.reference.split("\n")[0].split(", so ")[1:]:
            lhs, rhs = eq.split(" = ")
            a, sym, b = lhs.split()
            want = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b), "/": int(a) // int(b)}[sym]
            res = int(rhs.split(".")[0])
            assert res == want and (sym != "/" or int(a) % int(b) == 0)
            assert last is None or int(a) == last
            last = res
        assert last == int(p.answer)
        lo, hi = t.cfg.numbers
        if ops[0] in ("add", "sub"):
            assert all(lo <= n <= hi for n in p.meta["numbers"])


def test_ops_and_steps_are_mixed_and_tagged():
    t = task(ops=ALL, steps=[1, 2])
    prompts = t.prompts("train", 400)
    firsts = {p.meta["op"].split("+")[0] for p in prompts}
    assert firsts == set(ALL)
    assert {p.meta["steps"] for p in prompts} == {1, 2}
    assert any("+" in p.meta["op"] for p in prompts)
    assert all(p.text.count("Answer:") == 1 for p in prompts)


@pytest.mark.parametrize("text, want", [
    ("so 8 + 6 = 14.\nAnswer: 14", "14"),
    ("Answer: 34 apples", "34"),
    ("**Answer:** 34", "34"),
    ("**Answer**: 34", "34"),
    ("Answer: **34**", "34"),
    ("answer: 34.", "34"),
    ("ANSWER:34", "34"),
    ("Answer: $1,200", "1200"),
    ("Answer: 1,234,567 stamps", "1234567"),
    ("Answer: 8 + 6 = 14", "14"),
    ("Answer: 12\nAnswer: 15", "15"),  # the last one counts
    ("Answer: 15\nThat was easy, 3 + 4 = 7.", "15"),  # later text without "Answer:" is ignored
    ("Answer:\n14", "14"),
    ("Answer: 14.0", "14"),
    ("Answer: 2.5", "2.5"),
    ("Answer: -3", "-3"),
    ("Answer: 14 (because 8 + 6 = 14)", "14"),
])
def test_extract_tricky_strings(text, want):
    assert task().extract(text) == want


@pytest.mark.parametrize("text", [
    "", "Dana has 14 apples.", "The answer is 14.", "Answer: fourteen", "Answer:", "Answer: <number>", "14",
])
def test_extract_none_without_a_numeric_answer_line(text):
    assert task().extract(text) is None
    assert parse_answer(text) is None


def test_score_is_numeric_equality():
    t = task()
    p = Prompt(id="x", text="q", answer="1200")
    assert t.score(p, "1200") == 1.0 and t.score(p, "1,200") == 1.0 and t.score(p, "1200.0") == 1.0
    assert t.score(p, "120") == 0.0 and t.score(p, None) == 0.0 and t.score(p, "n/a") == 0.0
    assert t.score_batch([p, p, p], ["Answer: 1,200 coins", "Answer: 12", "1200"]) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("cfg, field", [
    ({"ops": []}, "task.ops"),
    ({"ops": ["add", "add"]}, "task.ops"),
    ({"ops": ["pow"]}, "task.ops.0"),
    ({"numbers": [10, 5]}, "task.numbers"),
    ({"numbers": [0, 5]}, "task.numbers"),
    ({"factors": [1, 1]}, "task.factors"),
    ({"steps": [0, 1]}, "task.steps"),
    ({"steps": [2, 5]}, "task.steps"),
    ({"ops": ["mul"], "steps": [1, 2]}, "task"),
    ({"split_by": "name"}, "task.split_by"),
    ({"difficulty": 3}, "task.difficulty"),
])
def test_config_errors_are_one_line_user_errors(cfg, field):
    with pytest.raises(UserError) as err:
        task(**cfg)
    msg = str(err.value)
    assert msg.startswith(f"{field}:") and "\n" not in msg
