"""`executor: ray`: sampling, code scoring and held-out evaluation sharded over Ray actors.

Each actor (`Replica`) holds an hf engine on its own copy of the policy. `sync` puts the
driver's merged weights in the object store once; an actor fetches them on its next shard
when its copy is older (a restarted actor, rebuilt empty, fetches them too). A shard of
sampling is one batch the local engine would form (`length_batches`), and every prompt is
seeded on its own, so a sharded round draws the same samples, bit for bit, as a local one.
Training stays in the driver. Label-free scorers that need the policy (likelihood,
self-certainty, a judge's verdicts) score in the driver; a judge's sampling goes through
this engine and so is sharded too.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from sharpen.engines.sampler import length_batches
from sharpen.errors import UserError
from sharpen.executors.pool import ActorPool
from sharpen.executors.replica import Replica
from sharpen.types import Completion, PolicyModel, Prompt, SamplingParams, Task

Log = Callable[[str], None]
SCORE_SHARD = 256  # completions per scoring shard: one sandbox process runs them (code.py's chunk)


def loopback_only() -> None:
    """A local cluster listens on 127.0.0.1, not the machine's network address: Ray does
    that on macOS and Windows (ray_constants.ENABLE_RAY_CLUSTER), and a single-machine cluster
    needs nothing else. Joining a real cluster (`ray.address`) never calls this."""
    import ray._private.ray_constants as constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # for processes Ray starts from here
    constants.ENABLE_RAY_CLUSTER = False  # for this process, which imported ray already


def start_ray(address: str | None, log: Log = print) -> bool:
    """Join `address`, or start a local cluster (no dashboard) whose workers import this
    sharpen; returns whether this call started Ray (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        loopback_only()
        root = str(Path(__file__).resolve().parents[2])  # the directory holding the sharpen package
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(include_dashboard=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    log(f"ray: {'joined ' + address if address else 'started a local cluster'} ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
    return True


def actor_options(resources: dict[str, float]) -> dict[str, Any]:
    """`resources_per_worker` as Ray actor options; actors restart when they die, and their
    lost shards are redone by the pool (not retried by Ray, so the driver can say which)."""
    res = dict(resources)
    opts: dict[str, Any] = {"num_cpus": res.pop("CPU", 0.0), "num_gpus": res.pop("GPU", 0.0),
                            "max_restarts": -1, "max_task_retries": 0}
    if res:
        opts["resources"] = res
    return opts


def check_fits(num_workers: int, resources: dict[str, float]) -> None:
    """Actors that cannot all be placed would wait forever: say so at once."""
    import ray

    have = ray.cluster_resources()
    for key, per in resources.items():
        if per > 0 and num_workers * per > have.get(key, 0.0):
            raise UserError(f"ray.resources_per_worker: {num_workers} workers x {key} {per:g} do not fit the cluster's "
                            f"{have.get(key, 0.0):g} {key}; lower ray.num_workers or ray.resources_per_worker")


class RayEngine:
    """The Engine protocol over the actors: `generate` ships the local engine's batches."""

    name = "hf"
    syncs_weights = True

    def __init__(self, pool: ActorPool, policy: PolicyModel, batch_size: int) -> None:
        self.pool = pool
        self.policy = policy
        self.batch_size = batch_size
        self.version = 0
        self.weights: list[Any] = []  # [ObjectRef]: inside a list so Ray passes the ref, not the tensors
        self.synced: tuple[int, int] | None = None  # (id of the policy, its version) last broadcast

    def sync(self, policy: PolicyModel) -> None:
        """Put the policy's merged weights in the object store (once per new version)."""
        import ray

        key = (id(policy), policy.version)
        if self.synced == key and policy is self.policy:
            return
        self.policy = policy
        state = {k: v.detach().to("cpu") for k, v in policy.merged_state_dict().items()}  # put() copies
        self.weights = [ray.put(state)]
        self.version += 1
        self.synced = key

    def generate(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        if not self.weights:
            self.sync(self.policy)
        prompts, seeds = list(prompts), list(seeds)
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        batches = length_batches([len(ids) for ids in self.policy.encode_prompts(prompts)], self.batch_size)
        out: list[list[Completion]] = [[] for _ in prompts]

        def submit(actor: Any, b: int) -> Any:
            idx = batches[b]
            return actor.generate.remote(self.weights, self.version, [prompts[i] for i in idx], params,
                                         [seeds[i] for i in idx])

        def done(b: int, groups: list[list[Completion]]) -> None:
            for i, g in zip(batches[b], groups):
                out[i] = g
            if progress is not None:
                progress(len(batches[b]))

        self.pool.run(len(batches), submit, done, what="sampling")
        return out

    def sleep(self) -> None:
        """The actors keep their copies: the driver's trainer does not share their memory."""

    def close(self) -> None:
        self.weights = []


class RayTask:
    """The task, with `score_batch` sharded over the actors' sandboxes; the rest is local."""

    def __init__(self, task: Task, executor: "RayExecutor") -> None:
        self._task = task
        self._executor = executor

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_task", "_executor"):  # copy/pickle probe before __init__ ran
            raise AttributeError(name)
        return getattr(self._task, name)

    def score_batch(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> list[float]:
        pool = self._executor.pool
        if pool is None or len(prompts) <= SCORE_SHARD // 4:  # a handful: not worth a round trip
            return self._task.score_batch(prompts, completions)
        prompts, completions = list(prompts), list(completions)
        starts = list(range(0, len(prompts), SCORE_SHARD))
        out: list[float] = [0.0] * len(prompts)

        def submit(actor: Any, s: int) -> Any:
            a = starts[s]
            return actor.score_batch.remote(prompts[a:a + SCORE_SHARD], completions[a:a + SCORE_SHARD])

        def done(s: int, scores: list[float]) -> None:
            out[starts[s]:starts[s] + len(scores)] = scores

        pool.run(len(starts), submit, done, what="scoring")
        return out


class RayExecutor:
    """Starts (or joins) Ray, then `num_workers` actors the first time an engine is asked for."""

    name = "ray"

    def __init__(self, recipe: Any, log: Log = print) -> None:
        self.recipe = recipe
        self.log = log
        self.owns_ray = start_ray(recipe.ray.address, log)
        self.pool: ActorPool | None = None
        self.actors: list[Any] = []

    def start(self, policy: PolicyModel | None = None, batch_size: int = 64) -> ActorPool:
        """The actors, started once: with `policy`, each can load an engine replica of it;
        without one they only score."""
        if self.pool is None:
            try:
                self.pool = self._start_actors(policy, batch_size)
            except BaseException:
                self.close()
                raise
        return self.pool

    def _start_actors(self, policy: PolicyModel | None, batch_size: int) -> ActorPool:
        import ray

        cfg, rec = self.recipe.ray, self.recipe
        check_fits(cfg.num_workers, cfg.resources_per_worker)
        spec = None if policy is None else {
            "path": str(policy.source_dir), "device": rec.policy.device, "dtype": rec.policy.dtype,
            "prompt_format": getattr(policy, "prompt_format", None), "system_prompt": rec.policy.system_prompt}
        remote = ray.remote(Replica).options(**actor_options(cfg.resources_per_worker))
        self.actors = [remote.remote(spec, rec.task, torch.get_num_threads(), batch_size) for _ in range(cfg.num_workers)]
        pids = ray.get([a.pid.remote() for a in self.actors])
        self.log(f"ray: {len(self.actors)} workers (pids {', '.join(map(str, pids))})")
        return ActorPool(self.actors, log=self.log)

    def engine(self, cfg: Any, policy: PolicyModel, batch_size: int) -> RayEngine:
        if cfg.kind != "hf":
            raise UserError(f"executor: ray shards engine.kind=hf only (got {cfg.kind}); set engine.kind=hf or executor=local")
        return RayEngine(self.start(policy, batch_size), policy, batch_size)

    def task(self, task: Task) -> Task:
        """Tasks that run code score on the workers; string-matching ones are cheaper here."""
        return RayTask(task, self) if getattr(task, "runs_code", False) else task

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors, self.pool = [], None
        if self.owns_ray:
            ray.shutdown()
