"""Sandbox throughput: executions/second and p50/p95 latency for 1 and 2 workers.

The program is a small realistic check: evaluate a model-written expression on 16
inputs and print the outputs as JSON (what the code task's scorer runs). Each execution
is a full jail (namespaces, tmpfs root, fresh interpreter).

    python benchmarks/sandbox.py [--runs 60]
"""
from __future__ import annotations

import argparse
import statistics
import time

from sharpen.sandbox import run_many, run_python

PROGRAM = "import json\nf = lambda x: (x + 3) * 2 - x // 4\nprint(json.dumps([f(x) for x in range(-3, 13)]))\n"
EXPECTED = str([(x + 3) * 2 - x // 4 for x in range(-3, 13)]) + "\n"


def measure(workers: int, runs: int) -> dict[str, float]:
    latencies: list[float] = []

    def timed(code: str) -> str:
        r = run_python(code)
        latencies.append(r.seconds)
        return r.stdout

    start = time.perf_counter()
    if workers == 1:
        outs = [timed(PROGRAM) for _ in range(runs)]
    else:  # run_many's pool, with each call's own latency recorded
        results = run_many([PROGRAM] * runs, workers=workers)
        latencies = [r.seconds for r in results]
        outs = [r.stdout for r in results]
    wall = time.perf_counter() - start
    assert all(o == EXPECTED for o in outs), outs[:2]
    q = statistics.quantiles(latencies, n=20)
    return {"exec/s": runs / wall, "p50 ms": 1000 * statistics.median(latencies), "p95 ms": 1000 * q[18]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    run_python("pass")  # warm the page cache
    print(f"{'workers':>7} {'exec/s':>8} {'p50 ms':>8} {'p95 ms':>8}   ({args.runs} runs each)")
    for workers in (1, 2):
        m = measure(workers, args.runs)
        print(f"{workers:>7} {m['exec/s']:>8.1f} {m['p50 ms']:>8.1f} {m['p95 ms']:>8.1f}")


if __name__ == "__main__":
    main()
