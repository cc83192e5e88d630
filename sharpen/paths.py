"""Where sharpen keeps what it can rebuild: seeded tiny models, converted GGUF checkpoints.

A leaf module (it imports nothing of sharpen), so any part can find the cache without
importing the layers above it.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$SHARPEN_CACHE, else ~/.cache/sharpen."""
    return Path(os.environ.get("SHARPEN_CACHE") or Path.home() / ".cache" / "sharpen")
