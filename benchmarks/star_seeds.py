"""STaR's held-out gain across seeds, next to the supervised control: what `sharpen demo
--seed K` prints, for several K, as one table.

    python benchmarks/star_seeds.py [0 1 2]
"""
from __future__ import annotations

import sys
import time

from sharpen import api


def main() -> None:
    seeds = [int(s) for s in sys.argv[1:]] or [0, 1, 2]
    rows = []
    for seed in seeds:
        t0 = time.time()
        res = api.demo(seed, log=lambda m: None)
        acc = [m["splits"]["holdout"]["greedy_accuracy"] * 100 for m in res["star"]]
        ctl = [m["splits"]["holdout"]["greedy_accuracy"] * 100 for m in res["control"]]
        rep = res["seed"]
        rows.append((seed, rep.get("steps"), 100 * rep.get("eval_greedy_accuracy", 0), acc, ctl, time.time() - t0))
        print(f"seed {seed} done in {time.time() - t0:.0f} s", flush=True)
    print("| seed | seed steps (eval greedy) | " + " | ".join(f"R{r}" for r in range(len(rows[0][3])))
          + " | gain | control last | control gain | seconds |")
    print("|---" * (len(rows[0][3]) + 6) + "|")
    for seed, steps, sacc, acc, ctl, secs in rows:
        print(f"| {seed} | {steps} ({sacc:.1f}%) | " + " | ".join(f"{a:.1f}" for a in acc)
              + f" | {acc[-1] - acc[0]:+.1f} | {ctl[-1]:.1f} | {ctl[-1] - ctl[0]:+.1f} | {secs:.0f} |")
    gains = sorted(r[3][-1] - r[3][0] for r in rows)
    print(f"median gain: {gains[len(gains) // 2]:+.1f} points, min {gains[0]:+.1f}")


if __name__ == "__main__":
    main()
