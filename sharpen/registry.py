"""Registries that map a recipe's `kind` names to parts, so a new part is one decorator.

Each entry is a plain function plus the pydantic model that validates its knobs:

    @OBJECTIVES.register("dpo", DPOConfig)
    def dpo(policy, data, cfg, ctx) -> dict: ...

The recipe names the part by `kind`; `config.py` validates the rest of the block against
the registered model, so a typo fails at load time with the field's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable[..., Any]
    config: type[BaseModel]
    description: str


class Registry:
    """A named table of parts: `register` to add, `get` to look up by recipe name."""

    def __init__(self, part: str) -> None:
        self.part = part
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            doc = (fn.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, fn, config, doc[0] if doc else "")
            return fn

        return deco

    def get(self, name: str) -> Entry:
        _load_builtins()
        if name not in self._entries:
            raise KeyError(name)
        return self._entries[name]

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._entries)


TASKS = Registry("task")
FEEDBACK = Registry("feedback")
BUILDERS = Registry("build")
OBJECTIVES = Registry("objective")
MONITORS = Registry("monitor")

_loaded = False


def _load_builtins() -> None:
    """Import the built-in part packages once, so their decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for pkg in ("sharpen.tasks", "sharpen.feedback", "sharpen.builders", "sharpen.objectives", "sharpen.monitor.parts"):
        importlib.import_module(pkg)
