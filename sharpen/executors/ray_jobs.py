"""Whole runs as Ray tasks (`sharpen compare` and `sharpen sweep` with `executor: ray`):
one task per run, each reserving `ray.resources_per_worker`, its own run directory, lock
and resume as when it runs in a local process. Inside a task the run samples locally
(one level of parallelism: nested actors would wait for the CPUs their own runs hold).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from sharpen.engines.openai_client import SECRET_FIELD, exported_servers, keyed_mappings
from sharpen.errors import UserError
from sharpen.executors.ray_executor import actor_options, start_ray

Log = Callable[[str], None]


def run_on_ray(fn: Callable[[dict[str, Any], str, str], str], jobs: dict[str, tuple[dict[str, Any], Path]],
               ray_cfg: Any, log: Log = print) -> dict[str, Path]:
    """`fn(recipe mapping, run dir, tag)` for every job as a Ray task; returns tag -> run dir."""
    import ray
    from ray.exceptions import RayTaskError

    _check_keys_reach(jobs, ray_cfg.address)
    owns = start_ray(ray_cfg.address, log)
    try:
        opts = {k: v for k, v in actor_options(ray_cfg.resources_per_worker).items() if k in ("num_cpus", "num_gpus", "resources")}
        task = ray.remote(fn).options(**opts, max_retries=1)  # a run whose worker died resumes from its last round
        refs = {tag: task.remote(data, str(path), tag) for tag, (data, path) in jobs.items()}
        log(f"ray: {len(refs)} runs submitted as Ray tasks")
        out: dict[str, Path] = {}
        for tag, ref in refs.items():
            try:
                out[tag] = Path(ray.get(ref))
            except RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, UserError):
                    raise UserError(f"[{tag}] {cause}") from None
                raise
        return out
    finally:
        if owns:
            ray.shutdown()


def _check_keys_reach(jobs: dict[str, tuple[dict[str, Any], Path]], address: str | None) -> None:
    """A key given literally travels to the runs only in this process's environment (never as
    a task argument: `openai_client.export_keys`), which only a local cluster started from here
    inherits. A cluster joined or started before cannot see it: refuse before any run starts."""
    import ray

    for tag, (data, _) in jobs.items():
        if any(m.get(SECRET_FIELD) for m in keyed_mappings(data)):  # a task's arguments are stored by Ray
            raise ValueError(f"[{tag}] a run's recipe holds a key; hand workers Recipe.resolved() (keys are null)")
        servers = exported_servers(data)
        if servers and (address or ray.is_initialized()):
            where = f"the cluster at {address}" if address else "the Ray cluster already running in this process"
            raise UserError(f"[{tag}] ray.address: {where} cannot see the key given for {servers[0]} (a key travels only in the "
                            "environment of a local cluster started here); set api_key_env to a variable its workers have")
