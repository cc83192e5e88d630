"""Seed calibration: train the tiny seed model for each seed and print how it landed.

    SHARPEN_CACHE=/tmp/x .venv/bin/python benchmarks/seed_calibration.py [SEED ...]

Runs `train_seed` with the default `SeedConfig` on the default arithmetic task (seeds
0 1 2 when none are given), one thread, no cache, and prints one row per seed: steps
of the deterministic schedule, wall seconds, eval greedy accuracy, per-op accuracy and
whether it landed in the band with every op started.
"""
from __future__ import annotations

import argparse
import time

import torch

from sharpen.seeding import SeedConfig, train_seed
from sharpen.tasks import make_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print every accuracy check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SeedConfig()
    task = make_task({"name": "arithmetic"})
    print(f"SeedConfig: {cfg.model_dump(mode='json')}", flush=True)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        _, report = train_seed(task, seed, cfg, log=print if args.verbose else None)
        secs = time.perf_counter() - t0
        ops = " ".join(f"{op} {acc:5.1%}" for op, acc in report["by_op"].items())
        rows.append(f"{seed:>4} {report['steps']:>6} {secs:>8.1f} {report['eval_greedy_accuracy']:>11.1%}  {ops:<24} {report['in_band']}")
        print(rows[-1], flush=True)
    print(f"\n{'seed':>4} {'steps':>6} {'seconds':>8} {'eval greedy':>11}  {'per-op':<24} in_band")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
