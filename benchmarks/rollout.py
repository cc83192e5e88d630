"""Rollout throughput: engine hf (the built-in sampler) against transformers' `model.generate` on the demo's workload.

Same model, same prompts (fed to both in the same length-sorted batches), same n, same
temperature / top-p (top-k off for generate, so both sample one distribution), same
max_new_tokens, each with its own stop handling; one torch thread; median of a few
repeats. Useful tokens are the new tokens up to and including eos, counted the same way
for both. The last line is `speedup: X.XXx` (sampler tokens/s over generate tokens/s).

    python benchmarks/rollout.py                     # seed model + arithmetic prompts
    python benchmarks/rollout.py --fallback          # self-contained tiny model
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Callable

import torch

from sharpen.policy import Policy, new_tiny_policy
from sharpen.engines.sampler import left_pad
from sharpen.engines.hf import greedy, sample


def _reversed_addition(rng: random.Random) -> tuple[str, str]:
    """Digits least-significant first, unpadded: prompt and completion lengths both vary."""
    a, b = rng.randrange(10 ** rng.randint(1, 4)), rng.randrange(10 ** rng.randint(1, 4))
    return f"{str(a)[::-1]}+{str(b)[::-1]}=", str(a + b)[::-1]


def fallback_workload(n_prompts: int, steps: int = 300, seed: int = 0) -> tuple[Policy, list[str]]:
    """A tiny model trained `steps` steps on reversed-digit addition, so it stops at realistic lengths."""
    rng = random.Random(seed)
    policy = new_tiny_policy(seed)
    opt = torch.optim.AdamW(policy.model.parameters(), lr=3e-3)
    policy.model.train()
    for _ in range(steps):
        pairs = [_reversed_addition(rng) for _ in range(64)]
        logp, mask = policy.token_logprobs([policy.encode_prompt(p) for p, _ in pairs],
                                           [policy.encode_completion(c) for _, c in pairs])
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    policy.model.eval()
    return policy, [_reversed_addition(rng)[0] for _ in range(n_prompts)]


def demo_workload(n_prompts: int) -> tuple[Policy, list[str]]:
    """The demo's seed model and arithmetic prompts; ImportError when those modules are missing."""
    from sharpen.seeding import load_or_train_seed
    from sharpen.tasks import make_task

    path = load_or_train_seed(task_name="arithmetic", seed=0)
    prompts = make_task({"name": "arithmetic"}).prompts("train", n_prompts, round=0)
    return Policy.load(path), [p.text for p in prompts]


def run_sampler(policy: Policy, prompts: list[str], args: argparse.Namespace, seed: int) -> int:
    groups = sample(policy, prompts, n=args.n, temperature=args.temperature, top_p=args.top_p,
                           max_new_tokens=args.max_new_tokens, seed=seed,
                           batch_size=args.batch_size)
    return sum(len(c.token_ids) for g in groups for c in g)


def run_generate(policy: Policy, prompts: list[str], args: argparse.Namespace, seed: int) -> int:
    torch.manual_seed(seed)
    ids = [policy.encode_prompt(p) for p in prompts]
    ids.sort(key=len)  # the same length-sorted batches the sampler uses
    useful = 0
    with torch.inference_mode():
        for start in range(0, len(ids), args.batch_size):
            input_ids, mask, _ = left_pad(ids[start:start + args.batch_size], policy.pad_id)
            out = policy.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True,
                                        num_return_sequences=args.n, temperature=args.temperature,
                                        top_p=args.top_p, top_k=0, max_new_tokens=args.max_new_tokens,
                                        eos_token_id=policy.eos_id, pad_token_id=policy.pad_id)
            for row in out[:, input_ids.shape[1]:].tolist():
                useful += row.index(policy.eos_id) + 1 if policy.eos_id in row else len(row)
    return useful


def measure(fn: Callable[[int], int], repeats: int) -> tuple[float, int]:
    """Median seconds over `repeats` runs (after one warm-up on the same work), and useful tokens of the median run."""
    fn(-1)
    runs = []
    for r in range(repeats):
        start = time.perf_counter()
        tokens = fn(r)
        runs.append((time.perf_counter() - start, tokens))
    seconds = statistics.median(t for t, _ in runs)
    return seconds, min(runs, key=lambda run: abs(run[0] - seconds))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per batch, for both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fallback", action="store_true", help="skip the seed model; train a tiny one here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    workload = "arithmetic seed model (sharpen.seeding)"
    try:
        if args.fallback:
            raise ImportError("--fallback")
        policy, prompts = demo_workload(args.prompts)
    except ImportError as err:
        workload = f"fallback tiny model, 300 steps of reversed-digit addition ({err})"
        policy, prompts = fallback_workload(args.prompts)
    print(f"workload: {workload}; {len(prompts)} prompts x n={args.n}, max_new_tokens={args.max_new_tokens}, "
          f"T={args.temperature}, top_p={args.top_p}, batch={args.batch_size} prompts, 1 thread, "
          f"median of {args.repeats}; {policy.num_parameters():,} parameters")

    results = {
        "engine hf": measure(lambda s: run_sampler(policy, prompts, args, s), args.repeats),
        "model.generate": measure(lambda s: run_generate(policy, prompts, args, s), args.repeats),
    }
    rows = len(prompts) * args.n
    print(f"{'method':<16} {'seconds':>8} {'useful tokens':>14} {'tokens/row':>11} {'tokens/s':>10}")
    for name, (seconds, tokens) in results.items():
        print(f"{name:<16} {seconds:>8.2f} {tokens:>14,} {tokens / rows:>11.1f} {tokens / seconds:>10,.0f}")
    (s_sec, s_tok), (g_sec, g_tok) = results["engine hf"], results["model.generate"]
    print(f"speedup: {(s_tok / s_sec) / (g_tok / g_sec):.2f}x")


if __name__ == "__main__":
    main()
