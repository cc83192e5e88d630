import os
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def ray_cluster():
    """A small local Ray cluster (2 CPUs, 200 MB object store, no dashboard) whose workers
    import this checkout; skipped with the reason when Ray is missing or cannot start."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    from sharpen.executors.ray_executor import loopback_only

    loopback_only()  # the test cluster listens on 127.0.0.1 only
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    try:
        ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    except Exception as err:  # noqa: BLE001  (any start failure means: no cluster on this machine)
        pytest.skip(f"cannot start a local Ray cluster: {type(err).__name__}: {err}")
    yield ray
    ray.shutdown()
