"""The supervised control: SFT on the task's true completions of this round's prompts.

Not a self-improvement method: it is the ceiling a self-training recipe is measured
against (same prompts, same objective settings, gold data instead of kept samples)."""
from __future__ import annotations

from typing import Any, ClassVar, Literal


from sharpen.builders.base import BuildConfig
from sharpen.registry import BUILDERS
from sharpen.types import Built, Scored, SFTExample


class ReferenceConfig(BuildConfig):
    kind: Literal["reference"] = "reference"
    # read by the loop: the control trains on gold completions of the round's prompts, so it
    # samples nothing (half a real-model round's time, measured in make demo-real)
    uses_samples: ClassVar[bool] = False


@BUILDERS.register("reference", ReferenceConfig)
def reference_sft(scored: list[Scored], cfg: ReferenceConfig, ctx: Any) -> Built:
    """SFT set of gold reference completions, one per distinct prompt (supervised control)."""
    seen: dict[str, SFTExample] = {}
    for s in scored:
        p = s.sample.prompt
        if p.id not in seen and p.reference is not None:
            seen[p.id] = SFTExample(prompt=p.text, completion=p.reference)
    return Built(list(seen.values()), {"prompts_with_kept": len(seen)})
