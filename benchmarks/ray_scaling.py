"""executor: ray on this machine: one round's sampling + scoring with 1 and 2 Ray workers,
back to back, next to the same work in one local process, and an Amdahl model to N workers.

Measured per configuration: sampling + scoring seconds and tokens/s for the round's train
prompts (every sample checked identical to the local run), Ray's fixed costs (cluster
start, actor start, weight broadcast: put + fetch + load on every worker, cold and warm),
and, from one real local round of the recipe (`api.run`, rounds=1), the seconds of
sampling, training and evaluation. The model:

    T(N) = T_train + T_fixed(N) + T_par / (N * e)      S(N) = T_local / T(N)

with T_par the round's sampling + scoring + evaluation on one worker, T_fixed the measured
per-round Ray cost (weight broadcast), e the measured 2-worker parallel efficiency, and
T_train the driver's training (Amdahl's serial part). Prints both tables.

    python benchmarks/ray_scaling.py                              # tiny seed model, arithmetic
    python benchmarks/ray_scaling.py --model smollm2 --prompts 32 --n 2 --max-new-tokens 48 \
        --set eval.n=32 --set sample.batch_size=8              # SmolLM2-135M-Instruct (make .venv/.smollm2)
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sharpen import api
from sharpen.config import load_recipe
from sharpen.executors.local import LocalExecutor
from sharpen.executors.ray_executor import RayExecutor, start_ray
from sharpen.seeds import derive_seed
from sharpen.tasks import make_task
from sharpen.types import SamplingParams

MODELS = {
    "tiny": ("star", []),
    "smollm2": ("star_smollm2", ["policy.path=gguf:smollm2-135m-instruct"]),
}


def round_work(executor: Any, rec: Any, policy: Any, prompts: list[Any], params: SamplingParams) -> tuple[list, float, float]:
    """(groups, sampling seconds, scoring seconds) of one round's train prompts on `executor`."""
    engine = executor.engine(rec.engine, policy, batch_size=rec.sample.batch_size)
    task = executor.task(make_task(rec.task))
    seeds = [derive_seed(rec.run.seed, "sample", 1, p.id) for p in prompts]
    engine.sync(policy)
    t0 = time.perf_counter()
    groups = engine.generate([p.text for p in prompts], params, seeds)
    t1 = time.perf_counter()
    flat_p = [p for p, g in zip(prompts, groups) for _ in g]
    task.score_batch(flat_p, [c.text for g in groups for c in g])
    t2 = time.perf_counter()
    return groups, t1 - t0, t2 - t1


def broadcast(executor: RayExecutor, policy: Any) -> float:
    """Seconds to refresh every worker with new weights: put once, each worker fetches and loads."""
    import ray

    from sharpen.executors.ray_executor import RayEngine

    engine = RayEngine(executor.pool, policy, batch_size=1)
    policy.stepped()  # a new version, as after a round of training
    t0 = time.perf_counter()
    engine.sync(policy)
    one = SamplingParams(n=1, temperature=0.0, max_new_tokens=1)
    ray.get([a.generate.remote(engine.weights, engine.version, ["1+1="], one, [0]) for a in executor.actors])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="tiny")
    ap.add_argument("--prompts", type=int, default=1024)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--max-n", type=int, default=64, help="largest N in the model table")
    ap.add_argument("--set", action="append", default=[], help="more recipe overrides, e.g. eval.n=32 sample.batch_size=8 "
                    "(a sampling shard is one engine batch: prompts / batch_size shards)")
    args = ap.parse_args()

    name, extra = MODELS[args.model]
    overrides = [*extra, "rounds=1", f"sample.prompts_per_round={args.prompts}", f"sample.n={args.n}",
                 f"sample.max_new_tokens={args.max_new_tokens}", *args.set]
    rec = load_recipe(name, overrides)
    from sharpen.loop import load_policy, resolve_policy_path, set_threads

    path = resolve_policy_path(rec, print, None)
    policy = load_policy(rec, path)
    threads = set_threads(rec, policy)
    task = make_task(rec.task)
    prompts = task.prompts("train", rec.sample.prompts_per_round, round=1)
    params = SamplingParams(n=rec.sample.n, temperature=rec.sample.temperature, top_p=rec.sample.top_p,
                            max_new_tokens=rec.sample.max_new_tokens)
    print(f"{args.model}: {policy.num_parameters():,} parameters, {threads} torch thread(s) per process, "
          f"{len(prompts)} prompts x {params.n}, {params.max_new_tokens} new tokens max")

    # one real local round: the training fraction
    with tempfile.TemporaryDirectory() as tmp:
        out = api.run(rec, out=Path(tmp) / "run", log=lambda m: None)
        m1 = api.metrics(out)[1]["seconds"]
    round_local = m1["sample"] + m1["train"] + m1["eval"]
    print(f"local round 1 (api.run): sample {m1['sample']:.1f} s, train {m1['train']:.1f} s, eval {m1['eval']:.1f} s")

    rows = []
    ref, t_s, t_sc = round_work(LocalExecutor(), rec, policy, prompts, params)
    tokens = sum(len(c.token_ids) for g in ref for c in g)
    rows.append({"config": "local (1 process)", "workers": 1, "sample_s": t_s, "score_s": t_sc})
    t0 = time.perf_counter()
    start_ray(None, log=lambda m: None)
    t_ray = time.perf_counter() - t0
    fixed: dict[int, dict[str, float]] = {}
    for w in [int(x) for x in args.workers.split(",")]:
        ex = RayExecutor(load_recipe(name, [*overrides, "executor=ray", f"ray.num_workers={w}"]), log=lambda m: None)
        t0 = time.perf_counter()
        ex.start(policy, rec.sample.batch_size)
        t_actors = time.perf_counter() - t0
        cold = broadcast(ex, policy)  # first load: the replica builds its model
        warm = broadcast(ex, policy)  # what every later round pays
        groups, t_s, t_sc = round_work(ex, rec, policy, prompts, params)
        same = [[c.token_ids for c in g] for g in groups] == [[c.token_ids for c in g] for g in ref]
        ex.close()
        fixed[w] = {"actors_s": t_actors, "cold_s": cold, "warm_s": warm}
        rows.append({"config": f"ray, {w} worker{'s' * (w > 1)}", "workers": w, "sample_s": t_s, "score_s": t_sc,
                     "same": same})
    import ray

    ray.shutdown()

    base = rows[1]["sample_s"] + rows[1]["score_s"]
    local = rows[0]["sample_s"] + rows[0]["score_s"]
    print(f"\nsampling + scoring one round ({len(prompts) * params.n} samples, {tokens:,} tokens); Ray start-up {t_ray:.1f} s")
    print("| config | sample s | score s | tokens/s | speedup vs local | efficiency vs 1 worker | actor start s | "
          "broadcast cold / warm s | samples = local |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["sample_s"] + r["score_s"]
        w = r["workers"]
        f = fixed.get(w) if r["config"].startswith("ray") else None
        eff = f"{base / (w * t):.2f}" if f else "-"
        fx = f"{f['actors_s']:.1f} | {f['cold_s']:.2f} / {f['warm_s']:.2f}" if f else "- | -"
        print(f"| {r['config']} | {r['sample_s']:.2f} | {r['score_s']:.2f} | {tokens / r['sample_s']:,.0f} | "
              f"{local / t:.2f}x | {eff} | {fx} | {r.get('same', '-')} |")

    # Amdahl with the measured serial part (training), fixed cost and 2-worker efficiency
    w_max = max(fixed)
    t1 = rows[1]["sample_s"] + rows[1]["score_s"]
    t_w = rows[-1]["sample_s"] + rows[-1]["score_s"]
    e = t1 / (w_max * t_w) if w_max > 1 else 1.0
    par_share = (m1["sample"] + m1["eval"]) / round_local  # what shards: sampling, scoring, evaluation
    t_par = par_share * round_local * (t1 / local)  # on one Ray worker
    t_train = m1["train"]
    t_fixed = fixed[w_max]["warm_s"]
    print(f"\nAmdahl model: local round {round_local:.1f} s, training (serial) {t_train:.1f} s = "
          f"{t_train / round_local:.1%}; sharded work on 1 worker {t_par:.1f} s; fixed {t_fixed:.2f} s/round; "
          f"2-worker efficiency e = {e:.2f}")
    print("| N workers | round s (e = 1) | speedup (e = 1) | round s (measured e) | speedup (measured e) | gain of doubling (measured e) |")
    print("|---|---|---|---|---|---|")
    prev, n, stop = None, 1, None
    while n <= args.max_n:
        ideal = t_train + t_fixed + t_par / n
        t = t_train + t_fixed + t_par / (n * (e if n > 1 else 1.0))
        gain = None if prev is None else prev / t - 1
        if stop is None and gain is not None and gain < 0.10:
            stop = n
        print(f"| {n} | {ideal:.1f} | {round_local / ideal:.2f}x | {t:.1f} | {round_local / t:.2f}x | "
              f"{'-' if gain is None else f'{gain:+.1%}'} |")
        prev, n = t, n * 2
    print(f"limit (N -> inf): {round_local / (t_train + t_fixed):.2f}x (1 / serial share); "
          f"a doubling first gains < 10% at N = {stop or f'> {args.max_n}'} (measured e)")
    print("this machine has 2 cores, shared with other engineers' jobs while measuring: "
          "more than 2 workers here only split the same 2 cores")
    print(json.dumps({"rows": rows, "fixed": fixed, "ray_start_s": t_ray, "round": m1}, default=str))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
