"""Code scoring on the Ray workers' sandboxes: the same limits and the same results as the
driver's sandbox, the workers' kernels grant the same protections."""
from __future__ import annotations

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

from sharpen.config import load_recipe  # noqa: E402
from sharpen.executors.ray_executor import RayExecutor, RayTask  # noqa: E402
from sharpen.sandbox import missing_features  # noqa: E402
from sharpen.tasks import make_task  # noqa: E402


def test_workers_sandbox_has_the_drivers_protections(ray_cluster):
    ex = RayExecutor(load_recipe("star_code", ["executor=ray"]), log=lambda m: None)
    try:
        pool = ex.start()
        import ray

        assert ray.get([a.sandbox_missing.remote() for a in pool.actors]) == [list(missing_features())] * 2
    finally:
        ex.close()


def test_code_scores_on_workers_equal_driver_scores(ray_cluster):
    if missing_features():
        pytest.skip(f"this kernel refuses {', '.join(missing_features())}: the full sandbox cannot run here")
    rec = load_recipe("star_code", ["executor=ray"])
    local = make_task(rec.task)
    prompts = local.prompts("eval", 300)  # two scoring shards, one per worker
    # right, wrong, malformed, and a C-level hang that the CPU timer must kill
    completions = [p.reference if i % 3 == 0 else ("x+1" if i % 3 == 1 else "(") for i, p in enumerate(prompts)]
    completions += ["9**9**9"]
    prompts = [*prompts, prompts[0]]
    ex = RayExecutor(rec, log=lambda m: None)
    try:
        ex.start()
        task = ex.task(make_task(rec.task))
        assert isinstance(task, RayTask) and task.name == "code"
        remote = task.score_batch(prompts, completions)
        assert remote == make_task(rec.task).score_batch(prompts, completions)
        assert sum(remote) >= 100 and remote[-1] == 0.0
        assert not ex.pool.redone
    finally:
        ex.close()


def test_string_matching_tasks_score_in_the_driver(ray_cluster):
    rec = load_recipe("star", ["executor=ray"])
    ex = RayExecutor(rec, log=lambda m: None)
    try:
        task = make_task(rec.task)
        assert ex.task(task) is task
    finally:
        ex.close()
