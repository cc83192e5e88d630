"""Does SFT-sharpening move greedy accuracy toward the seed model's best-of-N-by-likelihood
accuracy? Prints, on the holdout split: the seed's greedy accuracy,
its best-of-N accuracy when the pick is the sample with the highest sequence log-prob
(no labels), a random pick (plain sampling), pass@N (the ceiling), and, for each given
sharpening run directory, greedy accuracy per round.

    python benchmarks/sharpening_bon.py --seed-path SEED_DIR [--run RUN_DIR ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sharpen.policy import Policy
from sharpen.tasks import make_task
from sharpen.engines.hf import greedy, sample


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-path", required=True)
    ap.add_argument("--run", action="append", default=[])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--temperature", type=float, default=0.8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = make_task({"name": "arithmetic"})
    policy = Policy.load(args.seed_path)
    prompts = task.prompts("holdout", args.prompts)
    greedy = task.score_batch(prompts, greedy(policy, [p.text for p in prompts], max_new_tokens=24))
    groups = sample(policy, [p.text for p in prompts], n=args.n, temperature=args.temperature, max_new_tokens=24,
                           seed=0)
    # rank by the model's own log-likelihood at temperature 1 (the sharpening self-reward)
    flat_p = [p for p, g in zip(prompts, groups) for _ in g]
    flat_c = [c for g in groups for c in g]
    with torch.no_grad():
        lp = []
        for i in range(0, len(flat_c), 256):
            chunk = flat_c[i:i + 256]
            l, m = policy.token_logprobs([policy.encode_prompt(p.text) for p in flat_p[i:i + 256]],
                                         [c.token_ids for c in chunk])
            lp += (l * m).sum(-1).tolist()
    scores = task.score_batch(flat_p, [c.text for c in flat_c])
    n = args.n
    bon = sum(scores[i * n + max(range(n), key=lambda j: lp[i * n + j])] for i in range(len(prompts)))
    rand = sum(scores[i * n] for i in range(len(prompts)))
    passn = sum(max(scores[i * n:(i + 1) * n]) for i in range(len(prompts)))
    P = len(prompts)
    print(f"| measure (holdout, {P} prompts) | accuracy |")
    print("|---|---|")
    print(f"| seed greedy | {100 * sum(greedy) / P:.1f}% |")
    print(f"| seed single sample (T={args.temperature}) | {100 * rand / P:.1f}% |")
    print(f"| seed best-of-{n} by own log-likelihood | {100 * bon / P:.1f}% |")
    print(f"| seed pass@{n} | {100 * passn / P:.1f}% |")
    for run in args.run:
        rounds = sorted(Path(run).glob("rounds/*/metrics.json"), key=lambda p: int(p.parent.name))
        accs = [json.loads(p.read_text())["splits"]["holdout"]["greedy_accuracy"] for p in rounds]
        print(f"| {run}: greedy by round | {' -> '.join(f'{100 * a:.1f}%' for a in accs)} |")


if __name__ == "__main__":
    main()
