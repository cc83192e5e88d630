"""Named random streams: every draw of a run comes from (run.seed, purpose...), so any
round can be replayed exactly in another process (what makes resume bit-identical)."""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed for one purpose of one round: stable across processes and runs."""
    h = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def generator(seed: int, *parts: Any) -> torch.Generator:
    """A torch.Generator for the stream (seed, *parts)."""
    import torch  # here, not at import: tasks derive their seeds without loading torch

    return torch.Generator().manual_seed(derive_seed(seed, *parts))
