"""Check many model-written expressions against input/output tests in one sandboxed process.

One jail per expression would cost ~80 ms each; one process for the whole batch costs
that once. The harness reports each item's outputs as it goes, so when a process dies
(a C-level hang killed by its CPU timer, a wall-clock timeout, an exit), the items it
finished keep their results, the item it was on scores False, and the rest run again in
a fresh process: one bad completion never zeroes its batch-mates.

The expected outputs never enter the sandbox: the harness reports what each expression
returned (ints and floats, else null) and this process compares them by exact type and
value, so code that digs the report fd out by introspection can only claim outputs it
would have to compute. Expressions are evaluated without builtins (except `abs`) and their
prints go to /dev/null; a hostile raw item could still garble its batch-mates' lines, so
callers scoring model output first restrict its characters, as the code task's `extract`
does (no names, attributes or strings reach this harness).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from sharpen.sandbox.run import run_python

Check = tuple[str, Sequence[int], Sequence[int]]  # (expression in x, inputs, expected outputs)

HARNESS = r'''
import json, os, signal, sys

def _slow(signum, frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, _slow)            # Python-level loops: an exception, next item
signal.signal(signal.SIGVTALRM, signal.SIG_DFL)  # C-level hangs (9**9**9): the process dies
job = json.loads(sys.stdin.read())
report = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints (and casual forgeries) go nowhere
os.dup2(1, 2)
for i, (expr, xs) in enumerate(job["items"]):
    outputs = None
    try:
        signal.setitimer(signal.ITIMER_REAL, job["seconds"])
        signal.setitimer(signal.ITIMER_VIRTUAL, job["cpu_seconds"])
        f = eval("lambda x: (" + expr + "\n)", {"__builtins__": {"abs": abs}})
        outputs = json.dumps([got if type(got) in (int, float) else None for got in map(f, xs)])
    except BaseException:
        outputs = None
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
    report.write(f"{i} {outputs or 'null'}\n")
    report.flush()
'''


def check_expressions(
    items: Sequence[Check],
    *,
    seconds_per_item: float = 1.0,
    cpu_seconds_per_item: float = 2.0,
    workers: int = 2,
    chunk: int = 256,
    allow_weaker: bool = False,
) -> list[bool]:
    """True for each expression that maps every input to its expected output."""
    chunks = [list(range(i, min(i + chunk, len(items)))) for i in range(0, len(items), chunk)]
    results: list[bool] = [False] * len(items)

    def run_chunk(indices: list[int]) -> None:
        for i, ok in zip(indices, _check_chunk([items[i] for i in indices], seconds_per_item,
                                               cpu_seconds_per_item, allow_weaker)):
            results[i] = ok

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(run_chunk, chunks))
    return results


def _check_chunk(items: list[Check], seconds: float, cpu_seconds: float, allow_weaker: bool) -> list[bool]:
    results: list[bool] = []
    pending = items
    while pending:
        job = {"items": [[e, list(xs)] for e, xs, _ in pending], "seconds": seconds, "cpu_seconds": cpu_seconds}
        r = run_python(HARNESS, stdin=json.dumps(job), timeout=5.0 + 2 * seconds * len(pending),
                       cpu_seconds=5.0 + cpu_seconds * len(pending), allow_weaker=allow_weaker)
        done = _parse(r.stdout, len(pending))
        results += [matches(got, ys) for got, (_, _, ys) in zip(done, pending)]
        if len(done) == len(pending):
            break
        results.append(False)  # the item the process died on
        pending = pending[len(done) + 1:]
    return results


def matches(outputs: object, expected: Sequence[int]) -> bool:
    """True iff `outputs` (parsed JSON) is a list of ints/floats equal to `expected`, item by item."""
    return (type(outputs) is list and len(outputs) == len(expected)
            and all(type(got) in (int, float) and got == want for got, want in zip(outputs, expected)))


def _parse(stdout: str, limit: int) -> list[object]:
    """Each item's reported outputs (parsed JSON, None for an item that failed), in order;
    stops at the first line that is not the next index or not JSON (a torn or forged line)."""
    done: list[object] = []
    for line in stdout.splitlines():
        index, _, outputs = line.partition(" ")
        if index != str(len(done)) or len(done) == limit:
            break
        try:
            done.append(json.loads(outputs))
        except (ValueError, RecursionError):
            break
    return done
