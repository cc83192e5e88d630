import json
from decimal import Decimal
from pathlib import Path

import pytest

from sharpen.errors import UserError
from sharpen.tasks import make_task
from sharpen.tasks.jsonl import JSONLTask, match_exact, match_math, match_numeric, parse_number
from sharpen.types import SPLITS, Task


def write(tmp_path: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def task(path: Path, **kw) -> JSONLTask:
    return make_task({"name": "jsonl", "path": str(path), **kw})


def many(n: int = 300) -> list[dict]:
    return [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(n)]


def test_rows_without_split_are_hashed_into_disjoint_deterministic_splits(tmp_path):
    path = write(tmp_path, many())
    t, again = task(path), task(path)
    assert isinstance(t, Task)
    sizes = {s: len(t.pool(s)) for s in SPLITS}
    assert sum(sizes.values()) == 300 and 200 < sizes["train"] < 270 and sizes["eval"] > 10 and sizes["holdout"] > 10
    texts = {s: {p.text for p in t.pool(s)} for s in SPLITS}
    assert not texts["train"] & texts["eval"] and not texts["train"] & texts["holdout"] and not texts["eval"] & texts["holdout"]
    assert all(t.pool(s) == again.pool(s) for s in SPLITS)
    assert task(path, seed=1).pool("eval") != t.pool("eval")


def test_explicit_split_is_respected(tmp_path):
    rows = [{"prompt": f"p{i}", "answer": "1", "split": "holdout"} for i in range(5)]
    t = task(write(tmp_path, rows))
    assert [p.text for p in t.prompts("holdout", 10)] == [f"p{i}" for i in range(5)]
    assert t.prompts("train", 10) == [] and t.prompts("eval", 10) == []


def test_train_batches_per_round_and_fixed_eval(tmp_path):
    t = task(write(tmp_path, many()))
    r0, r1 = t.prompts("train", 50, round=0), t.prompts("train", 50, round=1)
    assert r0 != r1 and r0 == t.prompts("train", 50, round=0)
    assert len({p.id for p in r0}) == 50
    assert t.prompts("eval", 10, round=0) == t.prompts("eval", 10, round=3) == t.pool("eval")[:10]
    assert len(t.prompts("train", 10_000)) == len(t.pool("train"))  # a finite split gives what it has


def test_prompt_fields_and_reference(tmp_path):
    rows = [
        {"prompt": "Q1", "answer": 42, "split": "train", "topic": "x"},
        {"prompt": "Q2", "answer": "7", "split": "train", "reference": "3+4=7\nAnswer: 7"},
    ]
    t = task(write(tmp_path, rows))
    p1, p2 = t.pool("train")
    assert (p1.id, p1.answer, p1.reference, p1.meta) == ("data:1", "42", "Answer: 42", {"line": 1, "topic": "x"})
    assert p2.reference == "3+4=7\nAnswer: 7"
    assert t.score_batch([p1, p2], [p1.reference, p2.reference]) == [1.0, 1.0]


def test_extract_prefix_or_last_line(tmp_path):
    t = task(write(tmp_path, many(3)))
    assert t.extract("thinking...\nAnswer:  42 \nbye") == "42"
    assert t.extract("Answer: 1\nAnswer: 2") == "2"
    assert t.extract("some work\n 42 \n\n") == "42"
    assert t.extract("") is None and t.extract("Answer:   ") is None
    no_prefix = task(write(tmp_path, many(3)), answer_prefix=None)
    assert no_prefix.extract("Answer: 42") == "Answer: 42"


def test_exact_match(tmp_path):
    t = task(write(tmp_path, [{"prompt": "Q", "answer": "Paris", "split": "eval"}]))
    p = t.pool("eval")[0]
    assert t.score(p, t.extract("Answer: Paris")) == 1.0
    assert t.score(p, t.extract("Answer: paris")) == 0.0
    assert t.score(p, None) == 0.0
    assert match_exact(" a ", "a") and not match_exact("a", "b")


@pytest.mark.parametrize("pred", ["1000", "1,000", "1000.0", "  1000 ", "so it is 1000.", "Answer is 1,000"])
def test_numeric_match_tolerates_formatting(pred):
    assert match_numeric(pred, "1000")


@pytest.mark.parametrize("pred", ["1001", "100", "10,00", "", "none", "1000 and then 3"])
def test_numeric_match_rejects_other_numbers(pred):
    assert not match_numeric(pred, "1000")


def test_parse_number():
    assert parse_number("-3.50") == Decimal("-3.5")
    assert parse_number("x = 12,345,678") == Decimal("12345678")
    assert parse_number("nothing") is None


def test_numeric_task(tmp_path):
    t = task(write(tmp_path, [{"prompt": "Q", "answer": 1000, "split": "eval"}]), match="numeric")
    p = t.pool("eval")[0]
    assert t.score_batch([p, p, p], ["Answer: 1,000", "1000.00", "Answer: 999"]) == [1.0, 1.0, 0.0]


def test_math_match():
    assert match_math("0.5", "1/2")
    assert match_math("\\frac{1}{2}", "0.5")
    assert match_math("$1+x$", "x+1")
    assert match_math("The answer is $\\boxed{7}$", "7")
    assert not match_math("0.4", "1/2")
    assert not match_math("no math here", "7")


def test_math_task(tmp_path):
    t = task(write(tmp_path, [{"prompt": "Q", "answer": "\\frac{3}{4}", "split": "eval"}]), match="math")
    p = t.pool("eval")[0]
    assert t.score_batch([p, p], ["Answer: 0.75", "Answer: 0.7"]) == [1.0, 0.0]


def error_for(tmp_path: Path, lines: list, **kw) -> str:
    with pytest.raises(UserError) as err:
        task(write(tmp_path, lines), **kw)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"^task\.path: no such file .*nope\.jsonl"):
        task(tmp_path / "nope.jsonl")


def test_empty_file(tmp_path):
    assert "file is empty" in error_for(tmp_path, ["", "  "])


def test_bad_json_names_the_line(tmp_path):
    msg = error_for(tmp_path, [many(1)[0], '{"prompt": "x", "answer": '])
    assert msg.startswith(f"{tmp_path / 'data.jsonl'}:2: bad JSON")


@pytest.mark.parametrize("field", ["prompt", "answer"])
def test_missing_field_names_the_line(tmp_path, field):
    row = {"prompt": "x", "answer": "1"}
    del row[field]
    msg = error_for(tmp_path, [many(2)[0], many(2)[1], row])
    assert msg.startswith(f"{tmp_path / 'data.jsonl'}:3: missing field {field!r}")


@pytest.mark.parametrize(
    "row, words",
    [
        ([1, 2], "expected an object"),
        ({"prompt": 5, "answer": "1"}, "'prompt' must be a non-empty string"),
        ({"prompt": "  ", "answer": "1"}, "'prompt' must be a non-empty string"),
        ({"prompt": "x", "answer": ["1"]}, "'answer' must be a string or number, got list"),
        ({"prompt": "x", "answer": True}, "'answer' must be a string or number, got bool"),
        ({"prompt": "x", "answer": None}, "'answer' must be a string or number"),
        ({"prompt": "x", "answer": ""}, "'answer' is empty"),
        ({"prompt": "x", "answer": "1", "reference": 3}, "'reference' must be a string"),
        ({"prompt": "x", "answer": "1", "split": "dev"}, "split 'dev' is not one of train, eval, holdout"),
    ],
)
def test_wrong_types_name_the_line(tmp_path, row, words):
    msg = error_for(tmp_path, [row])
    assert msg.startswith(f"{tmp_path / 'data.jsonl'}:1: ") and words in msg


def test_same_prompt_in_two_splits_is_an_error(tmp_path):
    rows = [{"prompt": "x", "answer": "1", "split": "train"}, {"prompt": "x ", "answer": "1", "split": "eval"}]
    assert "also on line 1 in split 'train'" in error_for(tmp_path, rows)


def test_answers_unreadable_under_the_match_mode(tmp_path):
    assert "is not a number" in error_for(tmp_path, [{"prompt": "x", "answer": "ten"}], match="numeric")
    assert "math-verify cannot parse" in error_for(tmp_path, [{"prompt": "x", "answer": "}{"}], match="math")


def test_config_errors(tmp_path):
    with pytest.raises(UserError, match=r"^task\.path: required field is missing"):
        make_task({"name": "jsonl"})
    with pytest.raises(UserError, match=r"^task\.match: "):
        task(write(tmp_path, many(2)), match="fuzzy")
