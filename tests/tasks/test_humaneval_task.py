"""HumanEval loader: bundled problems, sandboxed unit tests, file:line errors for bad files."""
from __future__ import annotations

import gzip
import json

import pytest

from sharpen.errors import UserError
from sharpen.tasks import make_task
from sharpen.tasks.humaneval import HumanEvalConfig, HumanEvalTask, humaneval

TASK = humaneval(HumanEvalConfig())
PROBLEMS = {p.id: p for split in ("train", "eval", "holdout") for p in TASK.pool(split)}
ROW = {"task_id": "toy/0", "prompt": "def add(a, b):\n    \"\"\"Sum.\"\"\"\n",
       "canonical_solution": "    return a + b\n", "test": "def check(f):\n    assert f(2, 3) == 5\n",
       "entry_point": "add"}


def test_bundled_file_loads_all_164_problems_into_disjoint_splits():
    assert len(PROBLEMS) == 164
    ids = {s: {p.id for p in TASK.pool(s)} for s in ("train", "eval", "holdout")}
    assert sum(map(len, ids.values())) == 164 and all(ids.values())
    again = humaneval(HumanEvalConfig())
    assert [p.id for p in again.prompts("eval", 100)] == [p.id for p in TASK.prompts("eval", 100)]
    assert {p.id for p in humaneval(HumanEvalConfig(seed=1)).pool("eval")} != ids["eval"]
    assert isinstance(make_task({"name": "humaneval"}), HumanEvalTask)


def test_canonical_solutions_pass_and_wrong_bodies_fail():
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/12", "HumanEval/53", "HumanEval/101"]
    ps = [PROBLEMS[i] for i in ids]
    assert TASK.score_batch(ps, [p.reference for p in ps]) == [1.0] * 5
    wrong = ["    return None\n", "    return 1 +\n", "    import sys\n    sys.exit(0)\n",
             "    import os\n    os._exit(0)\n", "    while True:\n        pass\n"]
    fresh = humaneval(HumanEvalConfig(timeout=1.0))
    assert fresh.score_batch(ps, wrong) == [0.0] * 5


@pytest.mark.parametrize("completion, body", [
    ("    return x\n\ndef other():\n    pass\n", "    return x"),
    ("    return x\nif __name__ == '__main__':\n    main()", "    return x"),
    ("    if x:\n        return 1\n    return 2\nprint(f(1))", "    if x:\n        return 1\n    return 2"),
    ("   \n\n", None),
])
def test_extract_cuts_at_top_level_code(completion, body):
    assert TASK.extract(completion) == body


def _write(path, lines, gz=False):
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
def test_custom_file_jsonl_and_gz(tmp_path, gz):
    rows = [json.dumps({**ROW, "task_id": f"toy/{i}"}) for i in range(30)]
    task = humaneval(HumanEvalConfig(path=_write(tmp_path / ("p.jsonl.gz" if gz else "p.jsonl"), rows, gz)))
    ps = task.prompts("train", 3)
    assert task.score_batch(ps, ["    return a + b\n", "    return a - b\n", "    return b + a\n"]) == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("lines, message", [
    ([json.dumps(ROW), "{not json"], r"p.jsonl:2: bad JSON"),
    ([json.dumps({k: v for k, v in ROW.items() if k != "test"})], r"p.jsonl:1: field 'test' is missing"),
    ([json.dumps({**ROW, "entry_point": "not a name"})], r"p.jsonl:1: entry_point"),
    ([json.dumps(ROW), json.dumps(ROW)], r"p.jsonl:2: task_id 'toy/0' repeats line 1"),
    (["[1, 2]"], r"p.jsonl:1: expected an object"),
    (["", "  "], r"p.jsonl: file has no problems"),
])
def test_malformed_files_name_file_and_line(tmp_path, lines, message):
    with pytest.raises(UserError, match=message):
        humaneval(HumanEvalConfig(path=_write(tmp_path / "p.jsonl", lines)))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match="task.path: no such file"):
        humaneval(HumanEvalConfig(path=str(tmp_path / "nope.jsonl")))
    bad = tmp_path / "p.jsonl.gz"
    bad.write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(UserError, match="corrupt gzip"):
        humaneval(HumanEvalConfig(path=str(bad)))
    with pytest.raises(UserError, match="task.pathh"):
        make_task({"name": "humaneval", "pathh": "x"})


@pytest.mark.slow
def test_all_164_canonical_solutions_pass():
    ps = list(PROBLEMS.values())
    assert TASK.score_batch(ps, [p.reference for p in ps]) == [1.0] * 164
