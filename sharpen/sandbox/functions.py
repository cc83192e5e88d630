"""Unit tests of model-written functions that the function cannot forge.

The old harness ran `prompt + body + test + check(f)` as one program and trusted a printed
marker: the body could read the marker from its own program and print it, exit early, patch
`abs` or the test's helpers, or return an object whose `__eq__` is always True. Here each
test is two processes in one jail: `judge.py` (trusted) runs `check(candidate)`, and every
call of `candidate` goes through a pipe to `driver.py`, a fresh interpreter holding only the
prompt and the body (never the test), which answers with a plain value (`values.py`). The
verdict is the judge's stdout, which the model's process never holds. See judge.py for why.

Only the body runs: `function_body` cuts a completion at its first top-level line.
"""
from __future__ import annotations

import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sharpen.sandbox.run import run_many

_HERE = Path(__file__).parent
_CODEC = (_HERE / "values.py").read_text()
JUDGE = _CODEC + "\n" + (_HERE / "judge.py").read_text()
DRIVER = _CODEC + "\n" + (_HERE / "driver.py").read_text()


@dataclass(frozen=True)
class FunctionTest:
    """One function and its test: `prelude` (the prompt: signature, docstring, helpers the test
    may use) and `test` (defines `check(candidate)`) are trusted; `body` is the model's."""

    prelude: str
    body: str
    test: str
    entry_point: str


def check_functions(tests: Sequence[FunctionTest], *, workers: int = 2, timeout: float = 5.0,
                    memory_mb: int = 512, allow_weaker: bool = False) -> list[bool]:
    """True for each body whose function passes `check`; one jail per test, `workers` at a time."""
    jobs = [json.dumps({"prelude": t.prelude, "test": t.test, "entry_point": t.entry_point,
                        "candidate": t.prelude + function_body(t.body) + "\n", "driver": DRIVER}) for t in tests]
    results = run_many([JUDGE] * len(jobs), stdins=jobs, workers=workers, timeout=timeout, cpu_seconds=timeout,
                       memory_mb=memory_mb, allow_weaker=allow_weaker)
    return [r.ok and r.stdout == "pass\n" for r in results]


def function_body(completion: str) -> str:
    """`completion` up to its first top-level line: a logical line (or comment) starting at
    column 0, outside any string or bracket. Module-level code after the body never runs."""
    lines = completion.splitlines(keepends=True)
    end = _first_top_level_line(completion)
    return "".join(lines[:end]).rstrip()


def _first_top_level_line(code: str) -> int:
    """0-based index of the first top-level line (len(lines) if none)."""
    lines = code.splitlines()
    depth, line_start = 0, True
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (tokenize.NL, tokenize.NEWLINE):
                line_start = depth == 0
                continue
            if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                continue
            if line_start and tok.start[1] == 0:
                return tok.start[0] - 1
            line_start = False
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth = max(0, depth - 1)
    except (tokenize.TokenError, SyntaxError):  # unbalanced or badly indented: fall back to plain lines
        pass
    else:
        return len(lines)
    return next((i for i, line in enumerate(lines) if line.strip() and not line[0].isspace()), len(lines))
