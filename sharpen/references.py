"""The frozen policies a round compares against (`Context.reference`): "base" (the run's
starting checkpoint), "last" (this round's starting policy) and "previous" (the policy at
the start of the previous round, CREAM's last-iteration ranking). Each is loaded or copied
only when some part asks for it: a copy doubles a real checkpoint's memory."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sharpen.config import Recipe
from sharpen.errors import UserError
from sharpen.loading import load_policy
from sharpen.policy import Policy
from sharpen.rundir import RunDir
from sharpen.types import Context


class References:
    """Caches "base" and "previous" across rounds; "last" is copied per round on demand of the objective."""

    def __init__(self, recipe: Recipe, rundir: RunDir, base_path: Path) -> None:
        self.recipe, self.rundir, self.base_path = recipe, rundir, base_path
        self._base: Policy | None = None
        self._previous: tuple[int, Policy] | None = None

    def for_round(self, r: int, ctx: Context) -> Callable[[str], Policy]:
        """The round's `reference(which)`; "base" of a LoRA policy is `ctx.policy` with its adapters off."""
        last = ctx.policy.copy() if self.recipe.objective.reference == "last" else None

        def reference(which: str) -> Policy:
            if which == "last" and last is not None:
                return last
            if which == "previous" and r > 2:
                return self._previous_policy(r - 2)
            if which in ("base", "previous"):  # before round 3 the previous round's start is the base
                return ctx.policy.reference() if ctx.policy.is_lora else self._base_policy()
            raise UserError(f"objective.reference: {which!r} is not available; set objective.reference to base or last")

        return reference

    def _base_policy(self) -> Policy:
        if self._base is None:
            self._base = load_policy(self.recipe, self.base_path).copy()
        return self._base

    def _previous_policy(self, k: int) -> Policy:
        if self._previous is None or self._previous[0] != k:
            self._previous = (k, load_policy(self.recipe, self.rundir.checkpoint(k), k))
        return self._previous[1]
