"""`feedback: {kind: function}`: TRL and verl reward functions called as those libraries call
them, and every way a user's function or its path can be wrong, as one line naming it."""
from __future__ import annotations

import sys
import types

import pytest

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.function import FunctionConfig, convention, function_feedback, load_function, trl_columns
from sharpen.types import Completion, Prompt, Sample

MOD = "user_rewards_for_test"  # an importable module of user functions (sys.modules, no file)


@pytest.fixture
def user_fns(monkeypatch):
    """user_fns(f, g, ...) makes `user_rewards_for_test:f` importable; returns the module."""
    module = types.ModuleType(MOD)
    monkeypatch.setitem(sys.modules, MOD, module)

    def add(*fns):
        for f in fns:
            setattr(module, f.__name__, f)
        return module
    return add


def run(fn, samples, ctx, **knobs):
    return function_feedback(samples, FunctionConfig(fn=f"{MOD}:{fn.__name__}", **knobs), ctx)


def meta_samples() -> list[Sample]:
    out = []
    for pid, gold, meta, texts in [("p1", "7", {"op": "add", "line": 1}, ["x|7", "x|5"]), ("p2", "4", {"op": "mul"}, ["|4"])]:
        prompt = Prompt(id=pid, text=f"{pid}=", answer=gold, reference=f"ref|{gold}", meta=meta)
        out += [Sample(prompt, Completion(t, [ord(c) for c in t], [0.0] * len(t), True), i) for i, t in enumerate(texts)]
    return out


def trl_two(prompts, completions, **kwargs): ...
def trl_completions_only(completions, **kwargs): ...
def trl_columns_named(completions, answer): ...
def trl_kwargs_only(**kwargs): ...
def verl_full(data_source, solution_str, ground_truth, extra_info=None): ...
def verl_short(solution_str, ground_truth, method="strict"): ...
def neither(x): ...
def positional_only(completions, /): ...
def only_args(*args): ...


@pytest.mark.parametrize("fn, kind", [
    (trl_two, "trl"), (trl_completions_only, "trl"), (trl_columns_named, "trl"), (trl_kwargs_only, "trl"),
    (verl_full, "verl"), (verl_short, "verl"), (neither, None), (positional_only, None), (only_args, None), (len, None),
])
def test_the_signature_decides_the_convention(fn, kind):
    assert convention(fn) == kind


def test_trl_gets_one_batched_call_with_the_task_as_columns(user_fns, fake_ctx):
    calls = []

    def record(prompts, completions, **kwargs):
        calls.append(dict(prompts=prompts, completions=completions, **kwargs))
        return [float(len(c)) for c in completions]

    user_fns(record)
    rated = run(record, meta_samples(), fake_ctx())
    assert len(calls) == 1
    got = calls[0]
    assert got["prompts"] == ["p1=", "p1=", "p2="] and got["completions"] == ["x|7", "x|5", "|4"]
    assert got["completion_ids"][2] == [ord("|"), ord("4")]
    assert got["answer"] == got["solution"] == got["ground_truth"] == ["7", "7", "4"]
    assert got["reference"] == ["ref|7", "ref|7", "ref|4"] and got["prompt_id"] == ["p1", "p1", "p2"]
    assert got["op"] == ["add", "add", "mul"] and got["line"] == [1, 1, None]  # meta keys; missing -> None
    assert callable(got["log_metric"]) and callable(got["log_extra"])
    assert [s.reward for s in rated.scored] == [3.0, 3.0, 2.0]
    assert [s.scores["function"] for s in rated.scored] == [3.0, 3.0, 2.0]
    assert [s.correct for s in rated.scored] == [True, False, True]  # still the task's ground truth


def test_trl_without_kwargs_gets_only_what_it_names(user_fns, fake_ctx):
    seen = {}

    def exact(completions, answer, op):
        seen.update(completions=completions, answer=answer, op=op)
        return [float(c.endswith(a)) for c, a in zip(completions, answer)]

    user_fns(exact)
    assert [s.reward for s in run(exact, meta_samples(), fake_ctx(), name="exact").scored] == [1.0, 0.0, 1.0]
    assert seen["op"] == ["add", "add", "mul"]


def test_a_meta_column_wins_over_an_alias_of_the_same_name():
    prompt = Prompt(id="p", text="p=", answer="7", meta={"solution": "full worked solution"})
    cols = trl_columns([Sample(prompt, Completion("7", [1], [0.0], True))])
    assert cols["solution"] == ["full worked solution"] and cols["answer"] == ["7"]


def test_none_is_reward_zero_and_counted(fake_ctx):
    samples = meta_samples()  # p1 is an addition, p2 a multiplication
    rated = function_feedback(samples, FunctionConfig(fn="tests.feedback.rewards_trl:add_only_reward"), fake_ctx())
    assert [s.reward for s in rated.scored] == [1.0, 0.0, 0.0]
    assert rated.stats["none"] == 1 and rated.stats["convention"] == "trl"


def test_log_metric_lands_in_the_statistics(user_fns, fake_ctx):
    def logs(completions, log_metric, **kwargs):
        log_metric("length", 2.0)
        log_metric("length", 4.0)
        return [0.0] * len(completions)

    user_fns(logs)
    assert run(logs, meta_samples(), fake_ctx()).stats["length"] == 3.0


def test_conversational_format_passes_chat_messages(user_fns, fake_ctx):
    def chat(prompts, completions, **kwargs):
        assert prompts[0] == [{"role": "user", "content": "p1="}]
        return [float(c[0]["content"].endswith("7")) for c in completions]

    user_fns(chat)
    assert [s.reward for s in run(chat, meta_samples(), fake_ctx(), format="conversational").scored] == [1.0, 0.0, 0.0]


def test_trls_own_accuracy_reward_runs_unchanged(make_samples, fake_ctx):
    pytest.importorskip("math_verify")
    samples = make_samples({"q": ("12", [r"so $\boxed{12}$", r"so $\boxed{13}$"])})
    cfg = FunctionConfig(fn="trl.rewards:accuracy_reward", format="conversational")
    assert [s.reward for s in function_feedback(samples, cfg, fake_ctx()).scored] == [1.0, 0.0]


def test_verl_is_called_per_sample_with_its_arguments(user_fns, fake_ctx):
    calls = []

    def compute_score(data_source, solution_str, ground_truth, extra_info=None):
        calls.append((data_source, solution_str, ground_truth, extra_info))
        return {"score": float(solution_str.endswith(ground_truth)), "acc": solution_str == ground_truth}

    user_fns(compute_score)
    rated = run(compute_score, meta_samples(), fake_ctx())
    assert [s.reward for s in rated.scored] == [1.0, 0.0, 1.0]
    assert calls[1] == ("fake", "x|5", "7", {"prompt": "p1=", "prompt_id": "p1", "index": 1, "op": "add", "line": 1})
    assert rated.stats["convention"] == "verl" and rated.stats["acc"] == 0.0  # verl's extra dict keys, averaged


def test_verl_float_and_short_signature(user_fns, fake_ctx):
    def short(solution_str, ground_truth, method="strict"):
        return 0.5 if solution_str.endswith(ground_truth) else 0
    user_fns(short)
    assert [s.reward for s in run(short, meta_samples(), fake_ctx()).scored] == [0.5, 0.0, 0.5]


def one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Write user files under tmp_path, the working directory (what a relative fn path is relative to)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def write(name: str, source: str) -> str:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
        return name
    return write


def test_a_relative_file_path_and_a_module_in_the_working_directory_load(files):
    files("rw/mine.py", "def reward(completions, **kw):\n    return [1.0 for _ in completions]\n")
    files("cwd_module_for_sharpen_test.py", "def reward(completions, **kw):\n    return [2.0 for _ in completions]\n")
    try:
        assert load_function("rw/mine.py:reward")(completions=["a"]) == [1.0]
        assert load_function("cwd_module_for_sharpen_test:reward")(completions=["a"]) == [2.0]
    finally:
        sys.modules.pop("cwd_module_for_sharpen_test", None)


@pytest.mark.parametrize("fn, needles", [
    ("no_colon", ["expected 'package.module:function'"]),
    (":f", ["expected 'package.module:function'"]),
    ("no_such_module_xyz:f", ["cannot import 'no_such_module_xyz'", "No module named"]),
    ("missing.py:f", ["no such file 'missing.py'"]),
    ("broken.py:f", ["cannot import 'broken.py'", "ZeroDivisionError", "broken.py:2"]),
    ("ok.py:missing", ["'ok.py' has no attribute 'missing'"]),
    ("ok.py:CONSTANT", ["'CONSTANT' is a int, not a function"]),
    ("ok.py:neither", ["neither(x, y)", "is neither a TRL reward function", "nor a verl compute_score"]),
])
def test_a_bad_fn_is_a_one_line_recipe_error(files, fn, needles):
    files("broken.py", "import os\nx = 1 / 0\n")
    files("ok.py", "CONSTANT = 3\ndef neither(x, y):\n    return x\n")
    with pytest.raises(UserError) as err:
        load_recipe("grpo", [f"feedback={{kind: function, fn: '{fn}'}}"])
    one_line(err, "feedback.fn", *needles)


BROKEN = '''
def raises(completions, **kwargs):
    return [{}[c] for c in completions]
def short(completions, **kwargs):
    return [1.0]
def text(completions, **kwargs):
    return ["good" for _ in completions]
def nan(completions, **kwargs):
    return [float("nan") for _ in completions]
def scalar(completions, **kwargs):
    return 1.0
def needs_column(completions, difficulty):
    return [1.0 for _ in completions]
def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    return {"reward": 1.0}
def verl_raises(data_source, solution_str, ground_truth, extra_info=None):
    raise ValueError("bad ground truth\\nsecond line")
'''


@pytest.mark.parametrize("fn, needles", [
    ("raises", ["raised KeyError: 'x|7'", "user.py:3"]),
    ("short", ["returned 1 rewards for 3 samples"]),
    ("text", ["returned 'good' for sample 0", "expected a finite number"]),
    ("nan", ["returned nan for sample 0"]),
    ("scalar", ["returned float; expected a list of 3 floats"]),
    ("needs_column", ["needs 'difficulty'", "available: prompts, completions"]),
    ("compute_score", ["returned a dict without a 'score' key", "reward"]),
    ("verl_raises", ["raised ValueError: bad ground truth (user.py:17)"]),
])
def test_a_failing_function_is_one_line_naming_it(files, fake_ctx, fn, needles):
    files("user.py", BROKEN)
    with pytest.raises(UserError) as err:
        function_feedback(meta_samples(), FunctionConfig(fn=f"user.py:{fn}"), fake_ctx())
    msg = one_line(err, f"feedback.fn 'user.py:{fn}'", *needles)
    assert "second line" not in msg
