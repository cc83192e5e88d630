"""Rollout engines behind one protocol (`sharpen.types.Engine`): hf (built-in), vllm, openai.

The loop, evaluation, the seeding checks and any feedback that samples call an engine;
nothing else generates. `make_engine` builds the one a recipe names.
"""
from __future__ import annotations

from typing import Any

from sharpen.engines.hf import HFEngine
from sharpen.engines.sync import SyncReport, check_sync, logprob_gap
from sharpen.types import Engine, PolicyModel

__all__ = ["HFEngine", "SyncReport", "check_sync", "logprob_gap", "make_engine", "default_tolerance"]


def make_engine(cfg: Any, policy: PolicyModel, batch_size: int = 64) -> Engine:
    """The engine `cfg.kind` names (an `EngineConfig`), on `policy`'s weights."""
    if cfg.kind == "hf":
        return HFEngine(policy, batch_size=batch_size)
    if cfg.kind == "vllm":
        from sharpen.engines.vllm_engine import VLLMEngine

        return VLLMEngine(policy, gpu_memory_utilization=cfg.gpu_memory_utilization, kv_cache_gb=cfg.kv_cache_gb,
                          max_model_len=cfg.max_model_len, extra=dict(cfg.vllm_args))
    if cfg.kind == "openai":
        from sharpen.engines.openai_engine import OpenAIEngine

        tokenizer = getattr(policy, "tokenizer", None)
        return OpenAIEngine(cfg.base_url, cfg.model, api_key=cfg.api_key, tokenizer=tokenizer,
                            prompt_format=getattr(policy, "prompt_format", "chat"),
                            system_prompt=getattr(policy, "system_prompt", None), timeout=cfg.timeout)
    raise ValueError(f"unknown engine {cfg.kind!r}")


def default_tolerance(policy: PolicyModel, engine: Engine) -> float:
    """Mean per-token gap allowed by the sync check when the recipe sets none.

    float32 on both sides agrees to ~1e-6 (measured on the tiny model); bf16 engines
    differ from the trainer by rounding alone, so they get a wider band.
    """
    import torch

    return 1e-3 if getattr(policy, "dtype", torch.float32) == torch.float32 and engine.name == "hf" else 0.05
