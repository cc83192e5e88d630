"""What every builder's config declares to the loop."""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class BuildConfig(BaseModel):
    """A builder's knobs. `uses_samples` False (the supervised control) tells the loop to
    skip sampling and scoring: the builder needs only the round's prompts."""

    model_config = ConfigDict(extra="forbid")
    uses_samples: ClassVar[bool] = True
