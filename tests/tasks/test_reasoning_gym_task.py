import pytest
import reasoning_gym

from sharpen.errors import UserError
from sharpen.tasks import make_task
from sharpen.tasks.reasoning_gym import ReasoningGymTask
from sharpen.types import SPLITS, Task

DATASETS = ["basic_arithmetic", "leg_counting"]
SMALL = {"train_size": 200, "eval_size": 40, "holdout_size": 40}


def build(dataset: str, **kw) -> ReasoningGymTask:
    return make_task({"name": "reasoning_gym", "dataset": dataset, **SMALL, **kw})


@pytest.fixture(scope="module", params=DATASETS)
def rg_task(request) -> ReasoningGymTask:
    return build(request.param)


def all_prompts(t: ReasoningGymTask):
    return [p for s in SPLITS for p in t.pool(s)]


def test_prompts_carry_question_answer_and_entry(rg_task):
    assert isinstance(rg_task, Task)
    p = rg_task.prompts("eval", 1)[0]
    entry = p.meta["entry"]
    assert p.text == entry["question"] + rg_task.cfg.prompt_suffix
    assert p.answer == entry["answer"] and p.reference == f"Answer: {entry['answer']}"
    assert [len(rg_task.pool(s)) for s in SPLITS] == [200, 40, 40]


def test_gold_answers_score_one(rg_task):
    prompts = all_prompts(rg_task)
    assert rg_task.score_batch(prompts, [p.reference for p in prompts]) == [1.0] * len(prompts)
    p = prompts[0]
    assert rg_task.score(p, rg_task.extract(f"Let me count.\n\nAnswer: {p.answer}\n")) == 1.0
    assert rg_task.score(p, rg_task.extract(f"work\n{p.answer}")) == 1.0


def test_wrong_answers_score_below_one(rg_task):
    prompts = rg_task.pool("eval")
    wrong = [f"Answer: {int(p.answer) + 1}" for p in prompts]
    assert all(s < 1.0 for s in rg_task.score_batch(prompts, wrong))
    assert rg_task.score(prompts[0], None) == 0.0
    assert rg_task.score(prompts[0], rg_task.extract("")) == 0.0


def test_scores_with_the_datasets_own_score_answer(rg_task):
    own = reasoning_gym.get_score_answer_fn(rg_task.cfg.dataset)
    for p in rg_task.pool("eval")[:10]:
        for answer in [p.answer, f"{p.answer} legs", "7", f" {p.answer}!"]:
            assert rg_task.score(p, answer) == own(answer, p.meta["entry"])
    p = rg_task.pool("eval")[0]
    assert 0.0 < rg_task.score(p, f"{p.answer} legs") < 1.0  # the dataset's partial credit passes through


def test_splits_are_disjoint(rg_task):
    questions = {s: [p.meta["entry"]["question"] for p in rg_task.pool(s)] for s in SPLITS}
    for s in SPLITS:
        assert len(set(questions[s])) == len(questions[s])
    assert not set(questions["train"]) & set(questions["eval"])
    assert not set(questions["train"]) & set(questions["holdout"])
    assert not set(questions["eval"]) & set(questions["holdout"])


def test_splits_are_disjoint_in_a_small_question_space():
    # 37 animals x 1-3 of them: 111 questions, so unfiltered streams would surely overlap.
    few = {"min_animals": 1, "max_animals": 1, "min_instances": 1, "max_instances": 3}
    t = build("leg_counting", config=few, train_size=60, eval_size=6, holdout_size=6)
    questions = {s: {p.meta["entry"]["question"] for p in t.pool(s)} for s in SPLITS}
    assert [len(questions[s]) for s in SPLITS] == [60, 6, 6]
    assert not questions["train"] & (questions["eval"] | questions["holdout"])
    assert not questions["eval"] & questions["holdout"]


def test_splits_are_deterministic(rg_task):
    again = build(rg_task.cfg.dataset)
    for s in SPLITS:
        assert [p.text for p in again.pool(s)] == [p.text for p in rg_task.pool(s)]
    assert again.prompts("train", 30, round=4) == rg_task.prompts("train", 30, round=4)
    other = build(rg_task.cfg.dataset, seed=1, eval_size=10)
    assert [p.text for p in other.pool("eval")] != [p.text for p in rg_task.pool("eval")[:10]]


def test_rounds(rg_task):
    assert rg_task.prompts("train", 30, round=0) != rg_task.prompts("train", 30, round=1)
    assert rg_task.prompts("eval", 20, round=0) == rg_task.prompts("eval", 20, round=7) == rg_task.pool("eval")[:20]


def test_dataset_config_is_passed_through():
    t = build("leg_counting", config={"min_animals": 1, "max_animals": 1, "min_instances": 1, "max_instances": 3},
              train_size=20, eval_size=5, holdout_size=5)
    for p in all_prompts(t):
        assert p.meta["entry"]["metadata"]["num_animals"] == 1


def test_extract():
    t = build("leg_counting", eval_size=1)
    assert t.extract("I think...\nAnswer: 42  \nThanks") == "42"
    assert t.extract("so\n 42 \n") == "42"
    assert t.extract("  \n") is None


@pytest.mark.parametrize(
    "kw, pattern",
    [
        ({"dataset": "leg_count"}, r"^task\.dataset: unknown reasoning-gym dataset 'leg_count' \(did you mean leg_counting.*reasoning_gym\.factory\.DATASETS"),
        ({"dataset": "leg_counting", "config": {"seed": 3}}, r"^task\.config\.seed: .*task\.seed"),
        ({"dataset": "leg_counting", "config": {"size": 3}}, r"^task\.config\.size: "),
        ({"dataset": "leg_counting", "config": {"min_animalz": 1}}, r"^task\.config\.min_animalz: not a field .*min_animals"),
        ({"dataset": "leg_counting", "config": {"min_animals": 5, "max_animals": 2}}, r"^task\.config: 'leg_counting' rejects it: max_animals"),
        ({"dataset": "leg_counting", "eval_size": 0}, r"^task\.eval_size: "),
        ({"dataset": "leg_counting", "datasets": "x"}, r"^task\.datasets: unknown field"),
        ({}, r"^task\.dataset: required field is missing"),
    ],
)
def test_config_errors(kw, pattern):
    with pytest.raises(UserError, match=pattern) as err:
        make_task({"name": "reasoning_gym", **kw})
    assert "\n" not in str(err.value)


def test_too_few_distinct_questions_is_a_user_error():
    # One animal, one instance: only 37 distinct questions exist, about 4 of them in eval.
    one = {"min_animals": 1, "max_animals": 1, "min_instances": 1, "max_instances": 1}
    t = make_task({"name": "reasoning_gym", "dataset": "leg_counting", "config": one, "eval_size": 30})
    with pytest.raises(UserError, match=r"^task\.eval_size: 'leg_counting' gave only \d+ distinct eval questions"):
        t.prompts("eval", 5)
