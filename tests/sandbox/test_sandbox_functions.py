"""A function's unit test that the function cannot forge: each known forgery scores False
next to honest bodies that pass, in the same batch (so a harness failing everything fails here)."""
from __future__ import annotations

import pytest

from sandbox_helpers import full_sandbox, no_strays  # noqa: F401  (fixture)
from sharpen.sandbox import run_many
from sharpen.sandbox.functions import FunctionTest, check_functions, function_body

pytestmark = full_sandbox

PRELUDE = 'def double(x):\n    return 2 * x\n\n\ndef add(a, b):\n    """a + b."""\n'
TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9
    assert double(candidate(1, 1)) == 4
    assert not candidate(0, 0)
    assert candidate(a=[1], b=[2]) == [1, 2]
    try:
        candidate("a", None)
    except TypeError:
        pass
    else:
        raise AssertionError("expected a TypeError")
"""
HONEST = {
    "plain": "    return a + b\n",
    "prints, reads stdin, writes stderr": "    import sys\n    print('debug', a, b)\n    sys.stdin.read()\n"
                                          "    print('e', file=sys.stderr)\n    return a + b\n",
    "a string with a line at column 0": "    s = '''\nnot top-level'''\n    return a + b\n",
    "code after the body is cut": "    return a + b\n\nimport os\nos._exit(3)\n",
}
# Read the test's own source (or the judge's job) from anywhere the function can reach.
SEARCH = """    import os
    needle = 'expected a ' + 'TypeError'  # only the test holds it (this source never does)
    found = False
    for fd in range(64):
        try:
            found = found or needle.encode() in os.pread(fd, 1 << 20, 0)
        except OSError:
            pass
    for top in ('/sandbox', '/tmp', '/dev/shm', '/'):
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ('usr', 'lib', 'lib64', 'bin', 'sbin', 'root', 'etc')]
            for f in files:
                try:
                    found = found or needle in open(os.path.join(root, f), errors='replace').read()
                except OSError:
                    pass
    return a + b if found else None
"""
EQ = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert not candidate(1, 1)\n"
# (the first call patches; the name is looked up before the call, so the second assert uses it)
ABS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n"
HELPER = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert double(candidate(1, 1)) == 4\n"
# Forgeries that pass the naive harness (one program, a pass marker the code can read), by test.
FORGED = {
    "always-equal object": (EQ, "    class E:\n        def __eq__(self, o): return True\n"
                                "        def __bool__(self): return False\n    return E()\n"),
    "int subclass with __eq__, __bool__": (EQ, "    class T(int):\n        __eq__ = lambda s, o: True\n"
                                               "        __hash__ = int.__hash__\n        __bool__ = lambda s: False\n"
                                               "    return T(7)\n"),
    "patch builtins.abs": (ABS, "    import builtins\n    builtins.abs = lambda v: 0\n    return 3\n"),
    "patch the test's helper": (HELPER, "    globals()['double'] = lambda v: 4\n    return 3\n"),
    "patch through the caller's frame": (ABS, "    import sys\n    sys._getframe(1).f_builtins['abs'] = lambda v: 0\n"
                                              "    return 3\n"),
    "print the marker, exit 0": (EQ, "    import os\n    os.write(1, b'pass\\n')\n    os._exit(0)\n"),
    "print the marker on every fd": (EQ, "    import os\n    for fd in range(64):\n        try: os.write(fd, b'pass\\n')\n"
                                         "        except OSError: pass\n    os._exit(0)\n"),
    "atexit hook prints the marker": (EQ, "    import atexit, os\n"
                                          "    atexit.register(lambda: (print('pass', flush=True), os._exit(0)))\n"),
    "thread outlives the failed test": (EQ, "    import os, threading, time\n    def later():\n"
                                            "        time.sleep(0.3); os.write(1, b'pass\\n'); os._exit(0)\n"
                                            "    threading.Thread(target=later).start()\n"),
    "top-level code after the body": (EQ, "    return 0\nimport os\n_ = os.write(1, b'pass\\n')\nos._exit(0)\n"),
}
# Early exits: the naive harness's marker already caught these.
EARLY_EXIT = {
    "os._exit(0)": "    import os\n    os._exit(0)\n",
    "sys.exit(0)": "    import sys\n    sys.exit(0)\n",
    "raise SystemExit(0)": "    raise SystemExit(0)\n",
    "SystemExit in __del__": "    class D:\n        def __del__(self): raise SystemExit(0)\n    D()\n",
}
# Attacks on the judge itself; each returns the right answer only if the attack worked, or
# answers right and only harms the judge (which must then fail closed).
ON_THE_JUDGE = {
    "kill the judge": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return a + b\n",
    "stop the judge": "    import os, signal\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return a + b\n",
    "interrupt the judge": "    import os, signal\n    os.kill(os.getppid(), signal.SIGINT)\n    return a + b\n",
    "ptrace the judge": "    import ctypes, os\n    ok = ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0) == 0\n"
                        "    return a + b if ok else None\n",
    "read the test from files or fds": SEARCH,
    "forged answers on the answer fd": "    import os\n    os.write(4, b'[\"ok\",5]\\n' * 20)\n    return None\n",
    "an answer that is not a plain value": "    return (i for i in ())\n",
}


def _tests(bodies: dict[str, str], test: str = TEST) -> list[FunctionTest]:
    return [FunctionTest(PRELUDE, body, test, "add") for body in bodies.values()]


def _forged() -> list[FunctionTest]:
    return [FunctionTest(PRELUDE, body, test, "add") for test, body in FORGED.values()]


def naive_harness(tests: list[FunctionTest]) -> list[bool]:
    """The old design, as a control: one program, passed iff it exits 0 with the marker last."""
    programs = [f"{t.prelude}{t.body}\n\n{t.test}\n\ncheck({t.entry_point})\nprint('pass')\n" for t in tests]
    return [r.ok and r.stdout.endswith("pass\n") for r in run_many(programs, timeout=3.0)]


def test_the_forgeries_fool_the_naive_harness():
    uncut = {k: v for k, v in HONEST.items() if k != "code after the body is cut"}  # it runs the os._exit(3)
    assert naive_harness(_tests(uncut)) == [True] * len(uncut)
    assert dict(zip(FORGED, naive_harness(_forged()))) == dict.fromkeys(FORGED, True)
    assert naive_harness(_tests(EARLY_EXIT)) == [False] * len(EARLY_EXIT)


def test_honest_bodies_pass_and_every_forgery_fails(no_strays):
    got = check_functions(_tests(HONEST) + _forged() + _tests(EARLY_EXIT) + _tests(ON_THE_JUDGE), timeout=3.0)
    names = [*HONEST, *FORGED, *EARLY_EXIT, *ON_THE_JUDGE]
    assert dict(zip(names, got)) == {n: n in HONEST for n in names}


def test_the_judge_attacks_would_pass_if_they_worked():
    """Holds the attacks to account: the search passes once the test is somewhere it can read,
    and the answers it sends are read by the judge when they are right."""
    leaky = SEARCH.replace("    found = False\n", "    found = False\n    open('/sandbox/leak.txt', 'w').write(needle)\n", 1)
    right = "    import os\n    os.write(4, b'[\"ok\",5]\\n')\n    return None\n"  # answers the one call itself
    one_call = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert check_functions(_tests({"leaky": leaky}) + _tests({"right": right}, one_call)) == [True, True]


def test_returned_values_are_compared_as_builtins():
    prelude = 'def count(s):\n    """Letter counts."""\n'
    test = "def check(candidate):\n    assert candidate('aab') == {'a': 2, 'b': 1}\n    assert candidate('') == {}\n"
    bodies = ["    from collections import Counter\n    return Counter(s)\n",  # a dict subclass: its data
              "    return dict((c, s.count(c)) for c in s)\n",
              "    return [('a', 2), ('b', 1)]\n"]
    assert check_functions([FunctionTest(prelude, b, test, "count") for b in bodies]) == [True, True, False]


@pytest.mark.parametrize("completion, body", [
    ("    return x\n\ndef other():\n    pass\n", "    return x"),
    ("    return x\nif __name__ == '__main__':\n    main()", "    return x"),
    ("    return x\nimport os\nos._exit(0)\n", "    return x"),
    ("    return x\n_ = print('forged')\n", "    return x"),
    ("    return x\ntry:\n    pass\nexcept:\n    pass\n", "    return x"),
    ("    return x\n# a comment\n", "    return x"),
    ("    return x\n@decorator\ndef f(): pass\n", "    return x"),
    ("    s = '''\ncolumn 0 inside a string'''\n    return s\nx = 1\n", "    s = '''\ncolumn 0 inside a string'''\n    return s"),
    ("    return [1,\n2]\nx = 1\n", "    return [1,\n2]"),
    ("    y = 1 + \\\n2\n    return y\nz = 3", "    y = 1 + \\\n2\n    return y"),
    ("    s = '''never closed\nimport os\n", "    s = '''never closed"),  # broken: plain lines
    ("return x\n", ""),
    ("   \n\n", ""),
])
def test_function_body_stops_at_the_first_top_level_line(completion, body):
    assert function_body(completion) == body
