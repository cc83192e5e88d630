"""`executor: local`: the engine and task as the recipe builds them, in this process."""
from __future__ import annotations

from typing import Any

from sharpen.engines import make_engine
from sharpen.types import Engine, PolicyModel, Task


class LocalExecutor:
    """Everything in the driver process (the default)."""

    name = "local"

    def engine(self, cfg: Any, policy: PolicyModel, batch_size: int) -> Engine:
        return make_engine(cfg, policy, batch_size=batch_size)

    def task(self, task: Task) -> Task:
        return task

    def close(self) -> None:
        """Nothing to release."""
