"""`executor:` and `ray:` in a recipe: defaults, and one-line errors naming the field."""
from __future__ import annotations

import pytest

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.executors import LocalExecutor, make_executor


def test_local_is_the_default_and_changes_nothing():
    rec = load_recipe("star")
    assert rec.executor == "local" and rec.ray.num_workers == 2 and rec.ray.address is None
    assert rec.ray.resources_per_worker == {"CPU": 1.0}
    assert isinstance(make_executor(rec), LocalExecutor)


@pytest.mark.parametrize("override, words", [
    ("executor=dask", "executor: Input should be 'local' or 'ray'"),
    ("ray.num_workers=0", "ray.num_workers: Input should be greater than 0"),
    ("ray.resources_per_worker={CPU: -1}", "ray.resources_per_worker: Value error, CPU must be >= 0"),
    ("ray.adress=auto", "ray.adress: unknown key"),
    ("engine.kind=vllm", "executor: ray shards engine.kind=hf only"),
])
def test_bad_ray_settings_fail_in_one_line(override, words):
    with pytest.raises(UserError) as err:
        load_recipe("star", ["executor=ray", override])
    assert words in str(err.value) and "\n" not in str(err.value)


def test_workers_that_do_not_fit_the_cluster_fail_in_one_line(ray_cluster):
    from sharpen.executors.ray_executor import RayExecutor

    ex = RayExecutor(load_recipe("star", ["executor=ray", "ray.num_workers=3"]), log=lambda m: None)
    with pytest.raises(UserError, match=r"ray.resources_per_worker: 3 workers x CPU 1 do not fit the cluster's 2 CPU"):
        ex.start()
    assert ex.actors == [] and ex.pool is None


def test_a_local_cluster_listens_on_loopback_only(ray_cluster):
    """No Ray service of a local cluster binds the machine's network address."""
    node = ray_cluster.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"
    assert ray_cluster.get_runtime_context().gcs_address.startswith("127.0.0.1:")
