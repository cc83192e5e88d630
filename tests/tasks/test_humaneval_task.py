"""HumanEval loader: bundled problems, sandboxed unit tests, file:line errors for bad files."""
from __future__ import annotations

import gzip
import json

import pytest

from sharpen.errors import UserError
from sharpen.feedback.verifier import VerifierConfig, verifier
from sharpen.progress import RichProgress
from sharpen.tasks import make_task
from sharpen.tasks.humaneval import HumanEvalConfig, HumanEvalTask, humaneval
from sharpen.types import Completion, Context, Sample

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


# Completions that passed the old harness (one program ending in a random pass marker):
# they read the marker from their own program, compare equal to anything, or patch what
# the test uses. Each now scores 0 next to its problem's canonical solution.
MARKER = "re.findall(r'sharpen-pass-[0-9a-f]+', open(__file__).read())[-1]"
FORGED = {
    "top-level code prints the marker": ("HumanEval/0", "    return True\nimport os, re\n"
                                         f"_ = os.write(1, ({MARKER} + '\\n').encode())\nos._exit(0)\n"),
    "the body prints the marker": ("HumanEval/0", f"    import os, re\n    print({MARKER}, flush=True)\n    os._exit(0)\n"),
    "atexit prints the marker": ("HumanEval/0", f"    import atexit, os, re\n    m = {MARKER}\n"
                                 "    atexit.register(lambda: (print(m, flush=True), os._exit(0)))\n"),
    "always-equal object": ("HumanEval/0", "    class E:\n        def __eq__(self, o): return True\n    return E()\n"),
    "int subclass with __eq__": ("HumanEval/0", "    class T(int):\n        __eq__ = lambda s, o: True\n"
                                 "        __hash__ = int.__hash__\n    return T(0)\n"),
    "patch builtins.abs": ("HumanEval/2", "    import builtins\n    builtins.abs = lambda v: 0\n    return 0.5\n"),
    "patch the prompt's helper": ("HumanEval/32", "    globals()['poly'] = lambda xs, x: 0\n    return 0.0\n"),
    "patch math.fabs": ("HumanEval/32", "    import math\n    math.fabs = lambda v: 0\n    return 0.0\n"),
    "os._exit(0)": ("HumanEval/0", "    import os\n    os._exit(0)\n"),
    "sys.exit(0)": ("HumanEval/0", "    import sys\n    sys.exit(0)\n"),
    "raise SystemExit(0)": ("HumanEval/0", "    raise SystemExit(0)\n"),
}


def test_forgeries_score_zero_while_canonical_solutions_pass():
    ids = sorted({pid for pid, _ in FORGED.values()})
    task = humaneval(HumanEvalConfig(timeout=3.0))
    scores = task.score_batch([PROBLEMS[i] for i in ids] + [PROBLEMS[pid] for pid, _ in FORGED.values()],
                              [PROBLEMS[i].reference for i in ids] + [c for _, c in FORGED.values()])
    assert scores[:len(ids)] == [1.0] * len(ids)
    assert dict(zip(FORGED, scores[len(ids):])) == dict.fromkeys(FORGED, 0.0)


def test_reward_hacking_signs_are_counted_by_the_verifier():
    completions = {FORGED["top-level code prints the marker"][1]: True, FORGED["always-equal object"][1]: True,
                   "    return 1\n\n\ndef check(candidate):\n    pass\n": False,
                   "    return 1\nif __name__ == '__main__':\n    print(1)\n": False,
                   "    class P:\n        def __init__(self): pass\n    return 1\n": False}
    assert [TASK.reward_hacking_signs(c) for c in completions] == list(completions.values())
    assert not any(TASK.reward_hacking_signs(p.reference) for p in PROBLEMS.values())
    p = PROBLEMS["HumanEval/0"]
    texts = [p.reference, FORGED["always-equal object"][1], p.reference + "import os\n"]
    samples = [Sample(p, Completion(t, [], [], True), i) for i, t in enumerate(texts)]
    ctx = Context(task=TASK, policy=None, round=0, seed=0, reference=lambda which: None,
                  progress=RichProgress(enabled=False))
    rated = verifier(samples, VerifierConfig(), ctx)
    assert [s.reward for s in rated.scored] == [1.0, 0.0, 1.0]  # the import after the body is cut, not run
    assert rated.stats == {"reward_hacking": 2, "reward_hacking_rewarded": 1}


@pytest.mark.parametrize("completion, body", [
    ("    return x\n\ndef other():\n    pass\n", "    return x"),
    ("    return x\nimport os\nos._exit(0)\n", "    return x"),
    ("    return x\nmarker = 1\n", "    return x"),
    ("    return x\ntry:\n    pass\nexcept Exception:\n    pass\n", "    return x"),
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


def test_all_164_canonical_solutions_pass():  # ~10 s on 2 busy cores
    ps = list(PROBLEMS.values())
    assert TASK.score_batch(ps, [p.reference for p in ps]) == [1.0] * 164
