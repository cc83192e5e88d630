"""Group a round's scored samples by prompt: every builder works per prompt."""
from __future__ import annotations

from sharpen.types import Scored, group_by_prompt


def by_prompt(scored: list[Scored]) -> dict[str, list[Scored]]:
    """prompt id -> its samples in sample order whatever order feedback returned them in
    (prompts in first-seen order, so builds are deterministic)."""
    return {pid: sorted(g, key=lambda s: s.sample.index) for pid, g in group_by_prompt(scored).items()}


def ranked(group: list[Scored]) -> list[Scored]:
    """Highest reward first; ties go to the earlier sample, so the order never depends on luck."""
    return sorted(group, key=lambda s: (-s.reward, s.sample.index))
