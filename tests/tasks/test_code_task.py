"""The built-in code task: well-posed prompts, disjoint splits, sandboxed batch scoring."""
from __future__ import annotations

import os
import string
import uuid

import pytest

from sharpen.errors import UserError
from sharpen.tasks import make_task
from sharpen.tasks.code import HIDDEN_INPUTS, CodeConfig, CodeTask, code

TASK = code(CodeConfig())


def test_registered_and_validated():
    assert isinstance(make_task({"name": "code", "difficulty": [1, 2]}), CodeTask)
    with pytest.raises(UserError, match="task.difficulty"):
        make_task({"name": "code", "difficulty": [0, 5]})
    with pytest.raises(UserError, match="task.levels"):
        make_task({"name": "code", "levels": [1, 2]})


def test_prompts_are_short_printable_and_carry_their_tests():
    for p in TASK.prompts("train", 300):
        assert len(p.text) + len(p.reference) < 80
        assert set(p.text + p.reference) <= set(string.printable) - set("\t\n\r\x0b\x0c")
        assert p.answer == p.reference and p.text.endswith(";f=")
        assert [x for x, _ in p.meta["tests"]] == list(HIDDEN_INPUTS)


def test_examples_determine_the_function_within_the_grammar():
    """Brute force over every grammar form (not the task's own check): none agrees on the shown
    inputs yet differs on a hidden one."""
    forms = {e: [eval(f"lambda x: {e}")(x) for x in HIDDEN_INPUTS] for e in TASK.grammar.function_of}
    for p in TASK.prompts("train", 150) + TASK.prompts("eval", 50):
        shown = [(int(a[2:-1]), int(b)) for a, b in (ex.split("=") for ex in p.text.split(";")[:-1])]
        hidden = [y for _, y in p.meta["tests"]]
        for e, outs in forms.items():
            if all(outs[HIDDEN_INPUTS.index(x)] == y for x, y in shown):
                assert outs == hidden, f"{p.text} is also fit by {e}"


def test_splits_are_deterministic_and_disjoint_by_function():
    again = code(CodeConfig())
    assert [p.text for p in TASK.prompts("eval", 100)] == [p.text for p in again.prompts("eval", 100)]
    assert TASK.prompts("eval", 50, round=3) == TASK.prompts("eval", 50, round=0)
    assert TASK.prompts("train", 50, round=0) != TASK.prompts("train", 50, round=1)
    functions = {s: {p.answer for p in TASK.prompts(s, 300)} for s in ("train", "eval", "holdout")}
    assert not functions["train"] & functions["eval"]
    assert not functions["train"] & functions["holdout"]
    assert not functions["eval"] & functions["holdout"]
    other = code(CodeConfig(seed=1))
    assert {p.answer for p in other.prompts("eval", 300)} != functions["eval"]


def test_difficulty_selects_levels():
    easy = code(CodeConfig(difficulty=(1, 1)))
    assert {p.meta["level"] for p in easy.prompts("train", 100)} == {1}
    with pytest.raises(UserError, match="distinct 'eval' problems"):
        easy.prompts("eval", 5000, patience=300)


@pytest.mark.parametrize("completion, expected", [
    ("2*x+1", "2*x+1"), ("  abs(x-3)  \nmore text", "abs(x-3)"), ("", None), ("\n", None),
    ("x" * 40, None), ("__import__('os')", None), ("x.real", None), ("print(x)", None), ("[x]", None),
])
def test_extract(completion, expected):
    assert TASK.extract(completion) == expected


def test_references_and_equivalent_forms_score_one_through_the_sandbox():
    prompts = TASK.prompts("train", 100) + TASK.prompts("eval", 50) + TASK.prompts("holdout", 50)
    assert TASK.score_batch(prompts, [p.reference for p in prompts]) == [1.0] * len(prompts)
    fresh = code(CodeConfig())  # no cache, and wrapped forms are not the reference: they really run
    assert fresh.score_batch(prompts, [f"({p.reference})" for p in prompts]) == [1.0] * len(prompts)
    assert fresh.score_batch(prompts, [f"{p.reference}+1" for p in prompts]) == [0.0] * len(prompts)


def test_hostile_completions_score_zero_without_harming_the_batch(tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    p = TASK.prompts("train", 1)[0]
    completions = [f"({p.reference})", "2*x+", f"__import__('os').system('touch {marker}')",
                   "[1 for _ in iter(int,1)]", "x/0", "99**99**99", f"{p.reference}*1"]
    scores = code(CodeConfig()).score_batch([p] * len(completions), completions)
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert not os.path.exists(marker)


OS = "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__"
FORGED = {  # the first three passed the raw expression harness when it held the expected outputs
    "forged report line": f"{OS}['write'](3, b'0 1\\n') and 0",
    "forged report line, then os._exit(0)": f"{OS}['write'](3, b'0 1\\n') and {OS}['_exit'](0)",
    "expected outputs read off the harness": f"{OS}['sys']._getframe(1).f_globals['ys'][0]",
    "always-equal object": "type('E', (), {'__eq__': lambda s, o: True})()",
    "int subclass with __eq__": "type('T', (int,), {'__eq__': lambda s, o: True, '__hash__': int.__hash__})(0)",
    "os._exit(0)": f"{OS}['_exit'](0)",
    "sys.exit(0)": f"{OS}['sys'].exit(0)",
    "raise SystemExit": "(_ for _ in ()).throw(SystemExit(0))",
    "patch builtins": f"{OS}['sys'].modules['builtins'].__setattr__('all', lambda it: True) or 0",
    "code after the first line": "0\nimport os\nos._exit(0)",
}


def test_forgeries_score_zero_and_are_counted_while_references_pass():
    p = TASK.prompts("train", 1)[0]
    completions = [p.reference, f"({p.reference})", *FORGED.values()]
    scores = code(CodeConfig()).score_batch([p] * len(completions), completions)
    assert scores[:2] == [1.0, 1.0]
    assert dict(zip(FORGED, scores[2:])) == dict.fromkeys(FORGED, 0.0)
    signs = {name: TASK.reward_hacking_signs(c) for name, c in FORGED.items()}
    unsigned = {"raise SystemExit", "code after the first line"}  # no dunder in the line that would run
    assert signs == {name: name not in unsigned for name in FORGED}
    assert not any(TASK.reward_hacking_signs(q.reference) for q in TASK.prompts("train", 200))


def test_results_are_cached_per_expression_and_problem(monkeypatch):
    import sharpen.tasks.code as code_module

    calls = []
    real = code_module.check_expressions
    monkeypatch.setattr(code_module, "check_expressions", lambda items, **kw: calls.append(len(items)) or real(items, **kw))
    task = code(CodeConfig())
    ps = TASK.prompts("train", 20)
    completions = [f"({q.reference})" for q in ps]
    first = task.score_batch(ps + ps, completions + completions)
    assert task.score_batch(ps, completions) == first[:20] == [1.0] * 20
    assert calls == [len({(c, q.answer) for c, q in zip(completions, ps)})]
    assert task.score(ps[0], None) == 0.0 and task.score(ps[0], ps[0].reference) == 1.0


def test_anchors_are_shown_whenever_they_can_determine_the_function():
    prompts = TASK.prompts("train", 300)
    with_anchors = [p for p in prompts if {0, 1} <= set(p.meta["shown"])]
    assert len(with_anchors) >= 0.95 * len(prompts)  # only a few x//c need other inputs
    plain = code(CodeConfig(anchors=()))
    assert sum({0, 1} <= set(p.meta["shown"]) for p in plain.prompts("train", 300)) < 0.2 * 300
    with pytest.raises(UserError, match="task.anchors"):
        make_task({"name": "code", "anchors": [0, 0]})
    with pytest.raises(UserError, match="task.anchors"):
        make_task({"name": "code", "anchors": [99]})


def test_every_level_has_enough_functions_to_generalize_over():
    """With offsets 1..9, level 1 had 18 train functions and the model memorized them
    (held-out accuracy stalled while train loss fell to 0.03); offsets to 99 give each
    level hundreds of train functions and dozens held out."""
    from sharpen.tasks.code import TEMPLATES, _instances, _ranges
    from sharpen.tasks.splits import split_of

    g = TASK.grammar
    counts: dict[tuple[int, str], set[str]] = {}
    for level, templates in TEMPLATES.items():
        for template, constants in templates:
            for expr in _instances(template, _ranges(constants, TASK.cfg.max_constant)):
                f = g.function_of[expr]
                counts.setdefault((level, split_of(f.expression, TASK.seed)), set()).add(f.expression)
    for level in TEMPLATES:
        assert len(counts[(level, "train")]) >= 150, level
        assert min(len(counts[(level, s)]) for s in ("eval", "holdout")) >= 15, level
    small = code(CodeConfig(max_constant=9))
    assert len(small.grammar.functions) < len(g.functions) // 5
    with pytest.raises(UserError, match="task.max_constant"):
        make_task({"name": "code", "max_constant": 0})
