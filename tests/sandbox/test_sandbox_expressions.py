"""Batch checking of raw (unfiltered) expressions: hostile items fail alone, neighbours keep their results."""
from __future__ import annotations

import os
import uuid

from sandbox_helpers import full_sandbox, no_strays  # noqa: F401  (fixture)
from sharpen.sandbox.expressions import _parse, check_expressions, matches

pytestmark = full_sandbox
XS = list(range(-3, 13))
YS = [2 * x + 1 for x in XS]


def test_correct_wrong_and_broken_expressions():
    exprs = ["2*x+1", "x+x+1", "1+2*x", "2*x", "2*x+", "x/0", "y", "(2*x+1)*1.0", "'a'"]
    assert check_expressions([(e, XS, YS) for e in exprs]) == [True, True, True, False, False, False, False, True, False]


# os functions reached from a harness without builtins, the classic restricted-eval escape
OS = "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__"


def test_hostile_items_fail_alone(tmp_path, no_strays):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    exprs = [
        "2*x+1",
        "[1 for _ in iter(int, 1)]",                         # no builtins to loop with
        f"__import__('os').system('touch {marker}')",        # nor to import with
        f"{OS}['system']('touch {marker} /tmp/{marker.name}')*0+2*x+1",  # a shell runs, but inside the jail
        "9**9**9",                                           # a long pow: the per-item timer stops it
        f"{OS}['_exit'](0)",                                 # the process dies: the batch resumes after it
        f"{OS}['write'](1, b'0 1\\n1 1\\n') and 0",         # forged result lines go to /dev/null
        "2*x+1",
    ]
    got = check_expressions([(e, XS, YS) for e in exprs], seconds_per_item=0.5, cpu_seconds_per_item=1.0)
    assert got == [True, False, False, True, False, False, False, True]
    assert not marker.exists() and not os.path.exists(f"/tmp/{marker.name}")


def test_a_process_killed_mid_batch_keeps_finished_results():
    kill = f"{OS}['kill']({OS}['getpid'](), 9)"
    got = check_expressions([("2*x+1", XS, YS), (kill, XS, YS), ("x+x+1", XS, YS), (kill, XS, YS), ("2*x", XS, YS)])
    assert got == [True, False, True, False, False]


FRAME = f"{OS}['sys']._getframe(1).f_globals"


def test_forged_reports_and_peeking_at_the_expected_outputs_fail():
    """Each of these passed when the harness held the expected outputs and reported verdicts."""
    forged = [
        f"{OS}['write'](3, b'0 1\\n') and 0",                 # a verdict line on the report fd
        f"{OS}['write'](3, b'0 1\\n') and {OS}['_exit'](0)",  # ... then exit before the real one
        f"{FRAME}['ys'][{FRAME}['xs'].index(x)]",                # the expected outputs, read off the harness
        f"{OS}['write'](3, b'0 ' + str([0] * 16).encode() + b'\\n') and {OS}['_exit'](0)",  # claimed outputs
    ]
    got = check_expressions([(e, XS, YS) for e in forged] + [("2*x+1", XS, YS)])
    assert got == [False] * len(forged) + [True]


def test_outputs_match_only_by_exact_type_and_value():
    assert matches([2 * x + 1 for x in XS], YS) and matches([float(y) for y in YS], YS)
    assert not matches([True] * 3, [1, 1, 1])
    assert not matches(["1"], [1]) and not matches([None], [1]) and not matches(YS[:-1], YS)
    assert not matches({"0": 1}, [1]) and not matches(None, [1])


def test_parse_stops_at_a_torn_or_forged_line():
    assert _parse("0 [1]\n1 null\n2 [2.5]\n", 3) == [[1], None, [2.5]]
    assert _parse("0 [1]\n1 [0]\n2 [1", 3) == [[1], [0]]
    assert _parse("0 [1]\n5 [1]\n1 [1]\n", 3) == [[1]]
    assert _parse("0 [1]\n1 [1]\n2 [1]\n", 2) == [[1], [1]]


def test_many_items_split_over_workers():
    items = [(f"{a}*x+{b}", XS, [a * x + b if (a + b) % 2 else 0 for x in XS]) for a in range(1, 20) for b in range(30)]
    got = check_expressions(items, chunk=100, workers=2)
    assert got == [(a + b) % 2 == 1 for a in range(1, 20) for b in range(30)]
