"""STaR on the built-in code task across seeds: held-out pass rate (greedy) per round.

    .venv/bin/python benchmarks/star_code_seeds.py [SEED ...] [--override key=value ...]

Runs the `star_code` recipe (seed model included, from the cache or trained) for each
seed and prints one row per seed: the seed model's steps, holdout greedy accuracy per
round, the gain over 3 rounds, holdout pass@8 before/after, greedy per level after, and
wall seconds. Run directories go to runs/star_code-seed<K>-<time>.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from sharpen import api
from sharpen.seeding import seed_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--override", action="append", default=[], help="recipe override, e.g. rounds=2")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        t0 = time.time()
        out = Path("runs") / f"star_code-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = api.run("star_code", [f"run.seed={seed}", *args.override], out=out, log=lambda m: None)
        ms = api.metrics(run_dir)
        ho = [m["splits"]["holdout"] for m in ms]
        rep = seed_report(Path(ms[0]["policy"])) if ms[0].get("policy") else None
        steps = rep["steps"] if rep else "?"
        rows.append((seed, steps, [h["greedy_accuracy"] * 100 for h in ho], ho[0].get("pass_at_k", 0) * 100,
                     ho[-1].get("pass_at_k", 0) * 100, ho[-1].get("greedy_by_op", {}), time.time() - t0))
        print(f"seed {seed} done in {time.time() - t0:.0f} s: {run_dir}", flush=True)
    n_rounds = len(rows[0][2])
    print("| seed | seed steps | " + " | ".join(f"R{r}" for r in range(n_rounds))
          + " | gain | pass@8 R0 -> last | last by level | seconds |")
    print("|---" * (n_rounds + 6) + "|")
    for seed, steps, acc, p0, p1, levels, secs in rows:
        lv = " ".join(f"{k[-1]}:{v * 100:.0f}" for k, v in levels.items())
        print(f"| {seed} | {steps} | " + " | ".join(f"{a:.1f}" for a in acc)
              + f" | {acc[-1] - acc[0]:+.1f} | {p0:.1f} -> {p1:.1f} | {lv} | {secs:.0f} |")
    gains = sorted(r[2][-1] - r[2][0] for r in rows)
    print(f"median gain: {gains[len(gains) // 2]:+.1f} points, min {gains[0]:+.1f}")


if __name__ == "__main__":
    main()
