"""Tasks: deterministic disjoint prompt splits plus one scoring function each.

Importing this package registers every built-in task in `sharpen.registry.TASKS`;
`make_task` turns a recipe's `task:` block into a `Task`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from sharpen.errors import UserError
from sharpen.registry import TASKS
from sharpen.tasks import arithmetic, chain, code, humaneval, jsonl, reasoning_gym  # noqa: F401  (registers tasks)
from sharpen.tasks import word_problems  # noqa: F401  (registers "word_problems")
from sharpen.tasks.base import BaseTask, PoolTask, ProceduralTask, final_answer
from sharpen.types import Task


__all__ = ["BaseTask", "PoolTask", "ProceduralTask", "final_answer", "make_task", "validation_message"]


def validation_message(err: ValidationError, prefix: str = "task") -> str:
    """One line naming the first bad field as `prefix.field` and what was wrong with it."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *first["loc"]))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field; check its spelling or remove it"
    elif first["type"] == "missing":
        msg = "required field is missing; add it"
    elif first["type"] != "value_error":  # our own value errors already quote the value
        msg = f"{msg} (got {first.get('input')!r})"
    more = len(err.errors()) - 1
    return f"{loc}: {msg}" + (f" (+{more} more error{'s' * (more > 1)})" if more else "")


def make_task(cfg: dict[str, Any] | BaseModel) -> Task:
    """Validate a `task:` block against its registered config and build the task."""
    names = TASKS.names()
    raw = cfg.model_dump() if isinstance(cfg, BaseModel) else dict(cfg)
    name = raw.get("name")
    if name is None:
        raise UserError(f"task.name: missing; set it to one of: {', '.join(names)}")
    if name not in names:
        raise UserError(f"task.name: unknown task {name!r} (known: {', '.join(names)})")
    entry = TASKS.get(name)
    if isinstance(cfg, entry.config):
        return entry.fn(cfg)
    try:
        validated = entry.config.model_validate(raw)
    except ValidationError as err:
        raise UserError(validation_message(err)) from None
    return entry.fn(validated)
