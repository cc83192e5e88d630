"""Several runs at once (`compare`, `sweep`, `demo`): local processes, or Ray tasks when a
recipe says `executor: ray` (`sharpen.executors.ray_jobs`)."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

from sharpen import loop
from sharpen.config import Recipe

Log = Callable[[str], None]


def _run_in_worker(data: dict[str, Any], out: str, tag: str) -> str:
    from sharpen.config import validate_recipe

    rec = validate_recipe(data, tag)
    return str(loop.run(rec, out=out, log=lambda m: print(f"[{tag}] {m}", flush=True), progress=None))


def run_parallel(jobs: dict[str, tuple[Recipe, Path]], workers: int = 2, log: Log = print) -> dict[str, Path]:
    """Run several recipes in separate processes (one torch thread each), `workers` at a time,
    or, when a job's recipe says `executor: ray`, each as a Ray task (`sharpen.executors.ray_jobs`).

    The seed model of every job is trained first, here, so workers never race to train it.
    Workers get `resolved()` recipes, which hold no key: a literal key reaches them by the
    environment they inherit, for the duration of this call (`openai_client.keys_in_environment`)."""
    from sharpen.engines.openai_client import keys_in_environment

    with keys_in_environment([rec for rec, _ in jobs.values()]):
        return _run_jobs(jobs, workers, log)


def _run_jobs(jobs: dict[str, tuple[Recipe, Path]], workers: int, log: Log) -> dict[str, Path]:
    from sharpen.progress import RichProgress

    for rec, _ in jobs.values():
        loop.resolve_policy_path(rec, log, RichProgress())
    ray_cfg = next((rec.ray for rec, _ in jobs.values() if rec.executor == "ray"), None)
    if ray_cfg is not None:
        from sharpen.executors.ray_jobs import run_on_ray

        threads = max(1, int(ray_cfg.resources_per_worker.get("CPU", 1)))
        data = {tag: (rec.resolved() | {"run": {**rec.resolved()["run"], "threads": threads}, "executor": "local"}, path)
                for tag, (rec, path) in jobs.items()}
        return run_on_ray(_run_in_worker, data, ray_cfg, log=log)
    out: dict[str, Path] = {}
    if workers <= 1:
        for tag, (rec, path) in jobs.items():
            out[tag] = loop.run(rec, out=path, log=lambda m, t=tag: log(f"[{t}] {m}"))
        return out
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futs = {tag: pool.submit(_run_in_worker, rec.resolved() | {"run": {**rec.resolved()["run"], "threads": 1}}, str(path), tag)
                for tag, (rec, path) in jobs.items()}
        for tag, fut in futs.items():
            out[tag] = Path(fut.result())
    return out
