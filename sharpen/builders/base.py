"""What every builder's config declares to the loop."""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class BuildConfig(BaseModel):
    """A builder's knobs. `uses_samples` False (the supervised control) tells the loop to
    skip sampling and scoring: the builder needs only the round's prompts; `uses_anchor`
    asks for the initial model's samples too."""

    model_config = ConfigDict(extra="forbid")
    uses_samples: ClassVar[bool] = True
    # True: the loop hands the builder the initial model's scored samples of the round's
    # prompts as `ctx.anchor` (Temporal Self-Rewarding; sharpen.anchor)
    uses_anchor: ClassVar[bool] = False
