import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Seed models and other caches go to a per-session temp dir, never ~/.cache."""
    if "SHARPEN_CACHE" not in os.environ:
        monkeypatch.setenv("SHARPEN_CACHE", str(tmp_path_factory.getbasetemp() / "sharpen-cache"))
