"""Where a round's embarrassingly parallel work runs: in this process (`executor: local`)
or sharded over Ray actors (`executor: ray`).

An executor hands the loop an `Engine` and a `Task` that behave like the local ones: under
ray, `generate` and (for tasks that run code) `score_batch` are sharded over actors, in the
batches the local engine would form, so sharding changes no sample and no score. Training
stays in the driver.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from sharpen.executors.local import LocalExecutor
from sharpen.types import Engine, PolicyModel, Task

__all__ = ["Executor", "LocalExecutor", "make_executor"]


class Executor(Protocol):
    """Builds the engine and task the loop uses; `close` releases workers."""

    name: str

    def engine(self, cfg: Any, policy: PolicyModel, batch_size: int) -> Engine: ...
    def task(self, task: Task) -> Task: ...
    def close(self) -> None: ...


def make_executor(recipe: Any, log: Callable[[str], None] = print) -> Executor:
    """The executor `recipe.executor` names (`local` or `ray`, with `recipe.ray`)."""
    if recipe.executor == "ray":
        from sharpen.executors.ray_executor import RayExecutor

        return RayExecutor(recipe, log=log)
    return LocalExecutor()
