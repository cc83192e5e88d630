import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Seed models and other caches go to a per-session temp dir, never ~/.cache."""
    if "SHARPEN_CACHE" not in os.environ:
        monkeypatch.setenv("SHARPEN_CACHE", str(tmp_path_factory.getbasetemp() / "sharpen-cache"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A freshly initialised tiny model saved in HF format (seconds, no seeding)."""
    from sharpen.policy import new_tiny_policy

    path = tmp_path_factory.mktemp("tiny") / "ckpt"
    new_tiny_policy(0).save(path)
    return path


MICRO = ["rounds=1", "sample.n=2", "sample.prompts_per_round=8", "eval.n=8", "eval.k=2",
         "sample.max_new_tokens=12", "eval.max_new_tokens=12"]


@pytest.fixture
def micro_overrides(tiny_checkpoint):
    """Overrides that turn any recipe into a seconds-long run on the untrained tiny model."""
    return [*MICRO, f"policy.path={tiny_checkpoint}"]
