"""Group a round's scored samples by prompt: every builder works per prompt."""
from __future__ import annotations

from sharpen.types import Scored


def by_prompt(scored: list[Scored]) -> dict[str, list[Scored]]:
    """prompt id -> its samples in sample order (prompts in first-seen order, so builds are deterministic)."""
    groups: dict[str, list[Scored]] = {}
    for s in scored:
        groups.setdefault(s.sample.prompt.id, []).append(s)
    return {pid: sorted(g, key=lambda s: s.sample.index) for pid, g in groups.items()}


def ranked(group: list[Scored]) -> list[Scored]:
    """Highest reward first; ties go to the earlier sample, so the order never depends on luck."""
    return sorted(group, key=lambda s: (-s.reward, s.sample.index))
